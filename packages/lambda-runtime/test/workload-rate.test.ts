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

it('reports failed requests grouped by what happened, not one line each, and counts accuracy over answered ones', async () => {
  const { formatWorkloadReport } = await import('@facerec/lambda-runtime');
  let n = 0;
  const report = await runWorkload({
    url: 'http://127.0.0.1:1',
    frames: [{ file: 'f', filename: 'f.png', expected: 'amy', content: 'AA==' }],
    requests: 6,
    concurrency: 1,
    timeoutMs: 1000,
    maxRetries: 0,
    // The first five are refused by the server, the sixth fails without a response.
    send: async () => {
      if (++n <= 5) return { status: 400, body: '{"error":"bad frame"}' };
      throw new TypeError('fetch failed', { cause: new Error('other side closed') });
    },
    responses: { poll: async () => [] },
  });
  const lines = formatWorkloadReport(report);
  expect(report).toMatchObject({ answered: 0, rejected: 6, accuracy: { faces: 0, correct: 0 } });
  const failures = lines.filter((l) => l.includes('bad frame') || l.includes('other side closed'));
  expect(failures).toHaveLength(2);
  expect(failures[0]).toMatch(
    /^5 requests \(.+-0 \(f\.png\), .+-1 \(f\.png\), .+-2 \(f\.png\), …\): HTTP 400 /,
  );
  expect(failures[1]).toMatch(/-5 \(f\.png\): no answer: fetch failed \(other side closed\)$/);
});
