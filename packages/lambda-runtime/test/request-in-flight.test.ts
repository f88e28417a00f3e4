import { type LocalRuntime, startLocalRuntime } from '@facerec/lambda-runtime';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RequestsInFlight, responsesQuery } from '../src/local/requests.js';

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

describe('local runtime restarted on what its queues held', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(() => runtime?.close());

  it('keeps a frame whose faces or answers it holds in flight until its answers are collected: a resend is answered 409, not detected again', async () => {
    const OTHER = '99999999-2222-4333-8444-555555555555';
    // As a queue file leaves them: r1's two faces being recognised, one answered already; r0 answered whole.
    const transport = new InMemoryQueueTransport();
    const face = (request_id: string, face_index: number, face_count: number) => ({
      body: JSON.stringify({ request_id, frame_id: FRAME, face_index, face_count }),
    });
    const answer = (request_id: string, face_index: number, frame_id = FRAME) => ({
      body: JSON.stringify({ request_id, frame_id, face_index, face_count: 2, result: 'amy' }),
    });
    await transport.publish('requests', [face('r1', 1, 2)]);
    await transport.publish('responses', [
      answer('r1', 0),
      {
        body: JSON.stringify({
          request_id: 'r0',
          frame_id: FRAME,
          face_index: null,
          face_count: 0,
          result: 'no face',
        }),
      },
    ]);
    const seen: string[] = [];
    runtime = await startLocalRuntime({
      detection: async (event) => {
        const { request_id } = JSON.parse(event.body!);
        seen.push(request_id);
        return {
          statusCode: 200,
          headers: {},
          body: JSON.stringify({ request_id, frame_id: OTHER, faces: 1 }),
        };
      },
      // Recognition of the restored face is held back: its answer is published by the test.
      recognition: async (event) => ({
        batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })),
      }),
      transport,
      requestQueue: 'requests',
      responseQueue: 'responses',
      port: 0,
    });
    const post = async (request_id: string) =>
      (
        await fetch(runtime!.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ content: 'AAAA', request_id, filename: 'f.jpg' }),
        })
      ).status;
    const collect = async (prefix: string) =>
      (
        (await (await fetch(`${runtime!.url}/responses?prefix=${prefix}&wait=1`)).json()) as {
          messages: { face_index: number | null }[];
        }
      ).messages.map((m) => m.face_index);
    expect(await post('r1')).toBe(409);
    // r0's one answer is made, but its client has not collected it (a resend may come before it could): still
    // in flight; collected, its id is free.
    await vi.waitFor(() => expect(transport.depth('responses')).toBe(0));
    expect(await post('r0')).toBe(409);
    expect(await collect('r0')).toEqual([null]);
    expect(await post('r0')).toBe(200);
    // An answer of another frame under the same id does not count towards r1's.
    await transport.publish('responses', [answer('r1', 1, OTHER)]);
    expect(await collect('r1')).toEqual([0, 1]);
    expect(await post('r1')).toBe(409);
    await transport.publish('responses', [answer('r1', 1)]);
    await vi.waitFor(async () => expect(await collect('r1')).toEqual([1]));
    expect(await post('r1')).toBe(200);
    expect(seen).toEqual(['r0', 'r1']);
  });
});

describe('RequestsInFlight.restored', () => {
  it('waits for what the queue file held only, and 2 minutes at most; its wait is no frame latency', () => {
    let now = 0;
    const latencies: number[] = [];
    const requests = new RequestsInFlight({ now: () => now, onAnswered: (ms) => latencies.push(ms) });
    // Face 2 of 3 still queued; faces 0 and 1 were answered and collected before the stop.
    requests.restored({ request_id: 'a', frame_id: FRAME, face_index: 2, face_count: 3 });
    // b: one face queued that will never be answered (dead-lettered).
    requests.restored({ request_id: 'b', frame_id: FRAME, face_index: 0, face_count: 1 });
    expect([requests.begin('a'), requests.begin('b')]).toEqual([false, false]);
    requests.answered({ request_id: 'a', frame_id: FRAME, face_index: 2 }); // made, not yet collected
    expect(requests.begin('a')).toBe(false);
    requests.collected({ request_id: 'a', frame_id: FRAME, face_index: 2 });
    now = 1000;
    expect(requests.begin('a')).toBe(true);
    now = 2 * 60 * 1000 - 1;
    expect(requests.begin('b')).toBe(false);
    now = 2 * 60 * 1000 + 1;
    expect(requests.begin('b')).toBe(true);
    expect(latencies).toEqual([]);
  });
});

describe('GET /responses query', () => {
  const query = (search: string) => responsesQuery(new URLSearchParams(search));
  it('takes prefix or request_id, max and wait, capping max at 100 and wait at 20 s', () => {
    expect(query('')).toEqual({ match: { prefix: '' }, max: 10, wait: 0 });
    expect(query('prefix=run-1-&max=100&wait=1')).toEqual({ match: { prefix: 'run-1-' }, max: 100, wait: 1 });
    expect(query('request_id=job-1&wait=2')).toEqual({ match: { requestId: 'job-1' }, max: 10, wait: 2 });
    expect(query('max=1000&wait=60')).toEqual({ match: { prefix: '' }, max: 100, wait: 20 });
    expect(query('wait=0.5&max=1')).toEqual({ match: { prefix: '' }, max: 1, wait: 0.5 });
  });
  it('refuses what it would otherwise guess: unknown or repeated parameters, values that are no number', () => {
    const takes = 'GET /responses takes ?prefix=, ?request_id=, ?max=, ?wait= only';
    expect(query('prefx=run-1-')).toBe(`unknown query parameter "prefx"; ${takes}`);
    expect(query('requestid=a&limit=3')).toBe(`unknown query parameters "requestid", "limit"; ${takes}`);
    // An unset client id (prefix=) would take every client's answers; leaving the parameter out says so.
    expect(query('prefix=')).toMatch(/^\?prefix= is empty, which takes every client's answers/);
    expect(query('prefix=a&request_id=a')).toMatch(/^\?prefix= and \?request_id= together/);
    for (const id of ['', 'has space', 'x'.repeat(129), 'ü'])
      expect(query(`request_id=${encodeURIComponent(id)}`)).toBe(
        '?request_id= is no request id (1–128 letters, digits and . _ : -)',
      );
    expect(query('prefix=a&prefix=b')).toBe(`query parameter "prefix" given twice; ${takes}`);
    expect(query(`prefix=${'x'.repeat(257)}`)).toBe('?prefix= is at most 256 characters');
    for (const max of ['0', '-5', 'abc', '', '1.5', '1e3'])
      expect(query(`max=${max}`)).toMatch(/^\?max= takes a whole number ≥ 1/);
    for (const wait of ['-1', 'xyz', '', '1e1', 'Infinity'])
      expect(query(`wait=${wait}`)).toMatch(/^\?wait= takes seconds ≥ 0/);
  });
});
