import { type LocalRuntime, startLocalRuntime } from '@facerec/lambda-runtime';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterEach, describe, expect, it, vi } from 'vitest';

const FRAME = '11111111-2222-4333-8444-555555555555';

describe('local runtime: one frame per request id at a time', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(() => runtime?.close());

  it('answers 409 to a request_id in flight, and takes it again once every answer arrived', async () => {
    const transport = new InMemoryQueueTransport();
    const seen: string[] = [];
    // A detection handler that accepts every frame as two faces, and refuses a frame named "bad".
    const detection = async (event: { body?: string | null }) => {
      const { request_id, filename } = JSON.parse(event.body!);
      seen.push(request_id);
      if (filename === 'bad') return { statusCode: 422, headers: {}, body: '{"error":"undecodable"}' };
      return {
        statusCode: 200,
        headers: {},
        body: JSON.stringify({ request_id, frame_id: FRAME, faces: 2 }),
      };
    };
    runtime = await startLocalRuntime({
      detection,
      recognition: async () => ({ batchItemFailures: [] }),
      transport,
      requestQueue: 'requests',
      responseQueue: 'responses',
      port: 0,
    });
    const post = async (request_id: string, filename = 'f.jpg') => {
      const res = await fetch(runtime!.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'AAAA', request_id, filename }),
      });
      return { status: res.status, body: (await res.json()) as { error?: string; request_id?: string } };
    };
    const answer = (face_index: number) => ({
      body: JSON.stringify({ request_id: 'r1', frame_id: FRAME, face_index, result: 'amy' }),
    });

    expect((await post('r1')).status).toBe(200);
    const refused = await post('r1');
    expect(refused).toEqual({
      status: 409,
      body: { error: expect.stringMatching(/in flight/), request_id: 'r1' },
    });
    expect(seen).toEqual(['r1']); // the second frame never reached detection
    expect((await post('r2')).status).toBe(200);

    await transport.publish('responses', [answer(0), answer(0)]); // a duplicate counts once
    await vi.waitFor(() => expect(transport.depth('responses')).toBe(0));
    expect((await post('r1')).status).toBe(409);
    await transport.publish('responses', [answer(1)]);
    await vi.waitFor(async () => expect((await post('r1')).status).toBe(200));

    // A refused frame queued nothing: its id is free at once.
    expect((await post('r3', 'bad')).status).toBe(422);
    expect((await post('r3', 'bad')).status).toBe(422);
  });
});
