import { randomUUID } from 'node:crypto';
import { runWorkload } from '@facerec/lambda-runtime';
import { expect, it } from 'vitest';
import { NO_FACE, type ResponseMessage } from '../src/messages.js';

/**
 * `rate` paces an open load: request i leaves i / rate seconds after the start, whatever the answers do
 * (`facerec client --rate`, for fixed-rate load tests of admission control).
 */
it('sends at the requested rate (request i at i / rate s), with every request still answered', async () => {
  const sentAt: number[] = [];
  const pending: ResponseMessage[] = [];
  const started = performance.now();
  const report = await runWorkload({
    url: 'http://127.0.0.1:1',
    frames: [{ file: 'f', filename: 'f.png', expected: undefined, content: 'AA==' }],
    requests: 10,
    concurrency: 10,
    rate: 40,
    timeoutMs: 5000,
    send: async (_url, body) => {
      sentAt.push(performance.now() - started);
      const { request_id } = JSON.parse(body) as { request_id: string };
      pending.push({
        request_id,
        frame_id: randomUUID(),
        filename: 'f.png',
        face_index: null,
        face_count: 0,
        result: NO_FACE,
        distance: null,
        box: null,
      });
      return { status: 200, body: JSON.stringify({ request_id, faces: 0 }) };
    },
    responses: {
      poll: async () => {
        await new Promise((r) => setTimeout(r, 5));
        return pending.splice(0);
      },
    },
  });
  expect(report.answered).toBe(10);
  // 10 requests at 40/s: the last leaves 225 ms after the first, each no earlier than its slot.
  sentAt.sort((a, b) => a - b);
  sentAt.forEach((t, i) => {
    expect(t).toBeGreaterThanOrEqual((i * 1000) / 40 - 2);
  });
  expect(sentAt.at(-1)! - sentAt[0]!).toBeGreaterThanOrEqual(215);
});
