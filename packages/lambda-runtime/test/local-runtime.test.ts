import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { describeWithSharedData } from '@facerec/framework/testing';
import {
  createDetectionHandler,
  createRecognitionRecordHandler,
  formatWorkloadReport,
  jsonSender,
  loadFrames,
  localResponses,
  type QueueRecord,
  runWorkload,
  type SqsEvent,
  sqsBatchHandler,
  startLocalRuntime,
} from '@facerec/lambda-runtime';
import { InMemoryQueueTransport, ManualClock } from '@facerec/transport-memory';
import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { healthChecks } from '../src/local/runtime.js';
import { bbtSubset, PIPELINE_DATA, pipelineParts } from './fixtures.js';
import { frameHead, rawConnection, rawRequest, sendWhole } from './raw-request.js';

describe('local runtime: recognition consumer', () => {
  const notUsed = async () => ({ statusCode: 500, headers: {}, body: '{}' });

  async function start(recognition: Parameters<typeof startLocalRuntime>[0]['recognition']) {
    const clock = new ManualClock();
    const transport = new InMemoryQueueTransport({
      clock,
      queues: { requests: { visibilityTimeoutSeconds: 5 } },
    });
    const runtime = await startLocalRuntime({
      detection: notUsed,
      recognition,
      transport,
      requestQueue: 'requests',
      responseQueue: 'responses',
      port: 0,
    });
    return { clock, transport, runtime };
  }

  it('feeds the queue messages to handleRecords as they are, and acknowledges all but the failed ones', async () => {
    const batches: QueueRecord[][] = [];
    const recognition = sqsBatchHandler(async (records) => {
      batches.push([...records]);
      return { failedIds: records.filter((r) => r.body === 'bad').map((r) => r.id) };
    });
    const { clock, transport, runtime } = await start(recognition);
    try {
      await transport.publish('requests', [
        { id: 'good', body: 'ok' },
        { id: 'poison', body: 'bad' },
      ]);
      await vi.waitFor(() => expect(transport.inFlight('requests')).toBe(1));
      expect(batches.map((b) => b.map((r) => [r.id, r.body, r.receiveCount]))).toEqual([
        [
          ['good', 'ok', 1],
          ['poison', 'bad', 1],
        ],
      ]);
      // The records are the transport's messages themselves: no SQS event was built in between.
      expect(batches[0]![0]).toHaveProperty('receipt');
      clock.advance(5_000);
      await vi.waitFor(() => expect(batches).toHaveLength(2));
      expect(batches[1]!.map((r) => [r.id, r.receiveCount])).toEqual([['poison', 2]]);
    } finally {
      await runtime.close();
    }
  });

  it('hands a handler written against the Lambda types only an SQS event', async () => {
    const events: SqsEvent[] = [];
    const { clock, transport, runtime } = await start(async (event) => {
      events.push(event);
      return { batchItemFailures: [] };
    });
    try {
      const publishedAt = clock.now();
      await transport.publish('requests', [{ id: 'one', body: 'x' }]);
      await vi.waitFor(() => expect(events).toHaveLength(1));
      // As SQS would: when the queue took the message, by the transport's clock.
      expect(events[0]!.Records).toEqual([
        {
          messageId: 'one',
          body: 'x',
          attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(publishedAt) },
        },
      ]);
      await vi.waitFor(() => expect(transport.inFlight('requests')).toBe(0));
    } finally {
      await runtime.close();
    }
  });

  /**
   * Detection that answers every frame "no face" (its one answer published to `r`, nothing to recognise), after
   * `before` (a delay, or the test letting it go).
   */
  const noFaceDetection =
    (transport: InMemoryQueueTransport, before: () => Promise<unknown> = async () => {}) =>
    async (event: { body?: string | null }) => {
      await before();
      const { request_id } = JSON.parse(event.body ?? '{}') as { request_id: string };
      const answer = { request_id, frame_id: randomUUID(), filename: 'f', face_index: null, face_count: 0 };
      await transport.publish('r', [
        { body: JSON.stringify({ ...answer, result: 'no face', distance: null, box: null }) },
      ]);
      return { statusCode: 200, headers: {}, body: JSON.stringify({ request_id, filename: 'f', faces: 0 }) };
    };

  /** A runtime whose detection answers every frame with no face, and nothing to recognise. */
  /** A logger that keeps its warnings (message and fields) and drops the rest. */
  const warningsLogged = () => {
    const logged: Record<string, unknown>[] = [];
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (message: string, extra?: Record<string, unknown>) => logged.push({ message, ...extra }),
    };
    return { logged, logger };
  };

  /** POSTs an empty JSON object: a frame to a runtime whose detection takes anything (`frameOnly`). */
  const postEmpty = (url: string) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });

  const frameOnly = () => ({
    detection: async () => ({ statusCode: 200, headers: {}, body: '{"faces":0}' }),
    recognition: notUsed as never,
    transport: new InMemoryQueueTransport({ queues: {} }),
    requestQueue: 'q',
    responseQueue: 'r',
    port: 0,
  });

  // Wrong tokens (through the request handler), and malformed requests (Node's clientError, before any token).
  for (const [what, status, send] of [
    [
      'wrong tokens',
      401,
      async (url: string) =>
        (await fetch(`${url}/health`, { headers: { authorization: 'Bearer nope' } })).status === 401,
    ],
    [
      'malformed requests (no token needed to send them)',
      400,
      async (url: string) =>
        (await rawRequest(new URL(url).port, 'FOO / HTTP/1.1\r\nHost: localhost\r\n\r\n')).startsWith(
          'HTTP/1.1 400 Bad Request',
        ),
    ],
  ] as const) {
    it(`logs at most 20 refusals a second one by one, and how many more in one line; the counter has all: ${what}`, async () => {
      const { logged, logger } = warningsLogged();
      const registry = new Registry();
      const runtime = await startLocalRuntime({
        ...frameOnly(),
        logger,
        token: 's3cret',
        prometheus: registry,
      });
      try {
        const answered = await Promise.all(Array.from({ length: 60 }, () => send(runtime.url)));
        expect(answered.every(Boolean)).toBe(true);
        const oneByOne = () => logged.filter((l) => l.message === 'request refused').length;
        const summed = () =>
          logged
            .filter((l) => l.message === 'more requests refused, not logged one by one')
            .reduce((n, l) => n + (l.count as number), 0);
        // Each second's sum is said when the next second's first refusal comes or a second later: on a slow
        // machine the 60 straddle two seconds, and the second one's sum comes last.
        await vi.waitFor(() => expect(oneByOne() + summed()).toBe(60), { timeout: 3000 });
        expect(summed()).toBeGreaterThan(0);
        expect(oneByOne()).toBeLessThanOrEqual(40); // 20 a second, the 60 may straddle two seconds
        expect(await registry.getSingleMetricAsString('facerec_requests_refused_total')).toMatch(
          new RegExp(`facerec_requests_refused_total\\{status="${status}"\\} 60`),
        );
      } finally {
        await runtime.close();
      }
    });
  }

  it('answers /health with 503 "degraded" while a check fails (the gallery out of reach), and 200 once it passes', async () => {
    let down: Error | undefined = new Error(
      'cannot reach the Postgres server of postgres://…/faces (ECONNREFUSED)',
    );
    let calls = 0;
    const runtime = await startLocalRuntime({
      ...frameOnly(),
      checks: {
        gallery: async () => {
          calls++;
          if (down) throw down;
        },
      },
    });
    const health = async () => {
      const res = await fetch(`${runtime.url}/health`);
      const body = (await res.json()) as { status: string; checks: unknown };
      return [res.status, body.status, body.checks];
    };
    try {
      expect(await health()).toEqual([503, 'degraded', { gallery: { ok: false, error: down.message } }]);
      // Frames are still taken (their faces wait for the store); the health check says why to route elsewhere.
      expect((await postEmpty(runtime.url)).status).toBe(200);
      down = undefined;
      // Checks within a second share one call; then the store is asked again.
      await health();
      expect(calls).toBe(1);
      await vi.waitFor(async () => expect(await health()).toEqual([200, 'ok', { gallery: { ok: true } }]), {
        timeout: 3000,
        interval: 200,
      });
      expect(calls).toBe(2);
    } finally {
      await runtime.close();
    }
  });

  it('counts a /health check that does not answer in time as failed, and runs one call at a time per check', async () => {
    let calls = 0;
    const never = () => {
      calls++;
      return new Promise<void>(() => undefined);
    };
    const check = healthChecks({ gallery: never }, 1000, 50);
    const [a, b] = await Promise.all([check(), check()]);
    expect(a).toEqual({ gallery: { ok: false, error: 'no answer within 0.05 s' } });
    expect(b).toEqual(a);
    expect(calls).toBe(1);
  });

  it("gives the dead-letter queue's depth in /health when it has one", async () => {
    const transport = new InMemoryQueueTransport({ queues: {} });
    const runtime = await startLocalRuntime({ ...frameOnly(), transport, deadLetterQueue: 'q-dlq' });
    try {
      await transport.publish('q-dlq', [{ body: '{"request_id":"lost"}' }]);
      const health = (await (await fetch(`${runtime.url}/health`)).json()) as {
        queues: Record<string, { visible: number }>;
      };
      expect(health.queues['q-dlq']).toEqual({ visible: 1 });
      expect(health.queues.q).toMatchObject({ visible: 0 });
    } finally {
      await runtime.close();
    }
  });

  it('frees the place of a client that stalls while sending a frame (408 after requestTimeoutMs)', async () => {
    const registry = new Registry();
    const runtime = await startLocalRuntime({
      ...frameOnly(),
      maxInFlight: 1,
      requestTimeoutMs: 1_000,
      prometheus: registry,
    });
    try {
      const { port } = new URL(runtime.url);
      const stall = (text: string) => rawRequest(port, text);
      // Headers and half of the announced body, then nothing; and headers that never end.
      const reply = stall(
        `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"content":`,
      );
      const headersOnly = stall(`POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
      const post = () => postEmpty(runtime.url);
      await vi.waitFor(async () => expect((await post()).status).toBe(503));
      const started = performance.now();
      // Node's own 408s, answered as the server's other refusals: a JSON body, counted.
      const timedOut =
        /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*\r\n\r\n\{"error":"request not received within 1 s/;
      expect(await reply).toMatch(timedOut);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect((await post()).status).toBe(200);
      expect(await headersOnly).toMatch(timedOut);
      const refused = (await registry.getSingleMetric('facerec_requests_refused_total')?.get())?.values;
      expect(refused?.find((v) => v.labels.status === '408')?.value).toBe(2);
    } finally {
      await runtime.close();
    }
  });

  it('closes the connection after refusing a request whose body it did not read (one answer, not a 403 and a 408)', async () => {
    const runtime = await startLocalRuntime({ ...frameOnly(), requestTimeoutMs: 1_000, token: 's3cret' });
    try {
      const { port } = new URL(runtime.url);
      const refusedWith = async (headers: string) => {
        const started = performance.now();
        // Headers and a part of the announced body, then nothing.
        const text = await rawRequest(
          port,
          `POST / HTTP/1.1\r\n${headers}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"c`,
        );
        return { text, ms: performance.now() - started };
      };
      for (const [headers, status] of [
        ['Host: example.com\r\n', 403],
        [`Host: 127.0.0.1:${port}\r\nOrigin: https://example.com\r\n`, 403],
        [`Host: 127.0.0.1:${port}\r\nAuthorization: Bearer nope\r\n`, 401],
      ] as const) {
        const { text, ms } = await refusedWith(headers);
        expect(text.match(/HTTP\/1\.1 \d{3}/g)).toEqual([`HTTP/1.1 ${status}`]);
        // Closed at once, not when the request timeout (1 s) would have answered 408 on it too.
        expect(ms).toBeLessThan(900);
      }
    } finally {
      await runtime.close();
    }
  });

  it('takes a client that closes or resets its connection mid-request for that, not for a malformed request', async () => {
    const { logged, logger } = warningsLogged();
    const registry = new Registry();
    const runtime = await startLocalRuntime({ ...frameOnly(), logger, prometheus: registry });
    try {
      const { port } = new URL(runtime.url);
      const cut = (end: (socket: ReturnType<typeof connect>) => void) =>
        new Promise<void>((resolve) => {
          const socket = connect(Number(port), '127.0.0.1', () => {
            socket.write(
              `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"content":`,
            );
            setTimeout(() => end(socket), 100);
          });
          socket.on('error', () => undefined);
          socket.on('close', () => resolve());
        });
      await cut((socket) => socket.end()); // half the body, then its end of the connection closed
      await cut((socket) => socket.resetAndDestroy()); // half the body, then a reset
      await new Promise((r) => setTimeout(r, 200));
      expect(logged.filter((l) => l.message === 'request refused')).toEqual([]);
      const refused = (await registry.getSingleMetric('facerec_requests_refused_total')?.get())?.values ?? [];
      expect(refused.filter((v) => v.value > 0)).toEqual([]);
      // The server goes on answering.
      expect((await postEmpty(runtime.url)).status).toBe(200);
    } finally {
      await runtime.close();
    }
  });

  it('answers 408 to a body trickling in slower than 16 KiB/s after 5 s, freeing its place well before the request timeout', async () => {
    const runtime = await startLocalRuntime({ ...frameOnly(), maxInFlight: 1 });
    const { port } = new URL(runtime.url);
    const { socket, reply } = rawConnection(port);
    let trickle: NodeJS.Timeout | undefined;
    try {
      socket.write(`${frameHead(port, 6000000)}{`);
      trickle = setInterval(() => socket.write('x'), 200); // 5 bytes a second, for ever
      const started = performance.now();
      expect(await reply).toMatch(/^HTTP\/1\.1 408[\s\S]*slower than 16 KiB\/s/);
      expect(performance.now() - started).toBeLessThan(8_000); // not the 30 s request timeout
      expect((await postEmpty(runtime.url)).status).toBe(200);
    } finally {
      clearInterval(trickle);
      socket.destroy();
      await runtime.close();
    }
  });

  it("answers 413 to a client that sends a body over the limit whole before it reads (Python's urllib), not a broken pipe", async () => {
    const runtime = await startLocalRuntime(frameOnly());
    const { port } = new URL(runtime.url);
    try {
      // 7 MiB against the 6 MiB limit: the body is read to its end and discarded, then the 413. Before, the
      // connection was closed under the upload (EPIPE or ECONNRESET: urllib never saw the answer).
      const over = await sendWhole(port, 7 * 1024 * 1024);
      expect(over.writeError).toBeUndefined();
      expect(over.reply).toMatch(/^HTTP\/1\.1 413 [\s\S]*body exceeds the server's limit of 6291456 bytes/);
      // Beyond twice the limit, the connection is closed at once, the rest unread (no unbounded drain): the
      // client's write breaks.
      const far = await sendWhole(port, 13 * 1024 * 1024);
      expect(far.writeError).toMatch(/^(EPIPE|ECONNRESET)$/);
      expect((await postEmpty(runtime.url)).status).toBe(200);
    } finally {
      await runtime.close();
    }
  });

  it('a frame declared over the limit takes no place while its body is read and discarded', async () => {
    const runtime = await startLocalRuntime({ ...frameOnly(), maxInFlight: 1 });
    const { port } = new URL(runtime.url);
    const { socket, reply } = rawConnection(port);
    let trickle: NodeJS.Timeout | undefined;
    try {
      // 7 MiB declared against the 6 MiB limit, sent slowly: read and discarded for its 413 (see above).
      socket.write(frameHead(port, 7 * 1024 * 1024));
      trickle = setInterval(() => socket.write(Buffer.alloc(32 * 1024, 0x78)), 100);
      await new Promise((r) => setTimeout(r, 300));
      // The only place is free meanwhile: it took it, and every other frame was refused 503 until it ended.
      expect((await postEmpty(runtime.url)).status).toBe(200);
      clearInterval(trickle);
      socket.end();
      expect(await reply).toMatch(/^(HTTP\/1\.1 413 |$)/);
    } finally {
      clearInterval(trickle);
      socket.destroy();
      await runtime.close();
    }
  });

  it('takes only JSON, only under a loopback Host name, and with its token when it has one; logs each refusal', async () => {
    const { logged, logger } = warningsLogged();
    const base = { ...frameOnly(), logger };
    const open = await startLocalRuntime(base);
    const locked = await startLocalRuntime({ ...base, token: 's3cret' });
    const raw = (url: string, headers: Record<string, string>, body = '{}', method = 'POST') =>
      new Promise<number>((resolve, reject) => {
        const req = request(url, { method, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(body);
      });
    try {
      const json = { 'content-type': 'application/json' };
      expect(await raw(open.url, json)).toBe(200);
      expect(await raw(open.url, { 'content-type': 'application/json; charset=utf-8' })).toBe(200);
      expect(await raw(open.url, { 'content-type': 'text/plain' })).toBe(415);
      // A body compressed or in another charset was read as UTF-8 text: refused, saying what is taken.
      expect(await raw(open.url, { ...json, 'content-encoding': 'gzip' })).toBe(415);
      expect(await raw(open.url, { 'content-type': 'application/json; charset=ISO-8859-1' })).toBe(415);
      expect(await raw(open.url, { 'content-type': 'application/json; charset="UTF-8"' })).toBe(200);
      expect(await raw(open.url, { ...json, 'content-encoding': 'identity' })).toBe(200);
      // Not POST: 405 on /, whatever the content type; 404 elsewhere.
      expect(await raw(open.url, {}, '', 'GET')).toBe(405);
      expect(await raw(open.url, json, '{}', 'PUT')).toBe(405);
      expect(await raw(`${open.url}/elsewhere`, {}, '', 'GET')).toBe(404);
      // A frame posted anywhere but / is not taken as one, also where a path reads as a host (`//host/`).
      expect(await raw(`${open.url}/api`, json)).toBe(404);
      expect(await raw(`${open.url}//`, json)).toBe(404);
      expect(await raw(`${open.url}//127.0.0.1:9/`, json)).toBe(404);
      expect(await raw(`${open.url}/responses`, json)).toBe(405);
      // A misspelt ?prefix= would hand this client every client's answers: refused, naming what the route takes.
      const misspelt = await fetch(`${open.url}/responses?prefx=mine-&wait=0`);
      expect([misspelt.status, await misspelt.json()]).toEqual([
        400,
        {
          error:
            'unknown query parameter "prefx"; GET /responses takes ?prefix=, ?request_id=, ?max=, ?wait= only',
          request_id: null,
        },
      ]);
      const elsewhere = await fetch(`${open.url}/elsewhere-${'<b>'.repeat(50)}`);
      expect([elsewhere.status, await elsewhere.json()]).toEqual([
        404,
        { error: 'no such GET route: POST frames to /, GET /responses or /health', request_id: null },
      ]);
      expect(await raw(`${open.url}/collections/default/faces`, {}, '', 'GET')).toBe(404);
      expect(await raw(open.url, { ...json, host: 'evil.example:80' })).toBe(403);
      expect(await raw(open.url, { ...json, host: `localhost:${new URL(open.url).port}` })).toBe(200);
      // From a web page (a browser says so): a GET /responses would need no preflight and take the answers.
      const page = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' };
      expect(await raw(`${open.url}/responses?wait=0`, page, '', 'GET')).toBe(403);
      expect(await raw(open.url, { ...json, origin: 'https://evil.example' })).toBe(403);
      expect(await raw(`${open.url}/health`, { 'sec-fetch-site': 'none' }, '', 'GET')).toBe(200);
      expect(await raw(locked.url, json)).toBe(401);
      expect(await raw(locked.url, { ...json, authorization: 'Bearer wrong!' })).toBe(401);
      expect(await raw(locked.url, { ...json, authorization: 'Bearer s3cret' })).toBe(200);
      // The token after a thousand other headers is still read (Node dropped headers past 2,000 keys and values).
      const many = Object.fromEntries(Array.from({ length: 1100 }, (_, i) => [`x-${i}`, 'a']));
      expect(await raw(locked.url, { ...many, ...json, authorization: 'Bearer s3cret' })).toBe(200);
      // One warning per refusal: status, a fixed reason, method, a known route, the client; nothing echoed.
      const client = '127.0.0.1';
      expect(logged).toEqual(
        [
          [415, 'content-type is not application/json', 'POST', '/'],
          [415, 'content-encoding is not identity', 'POST', '/'],
          [415, 'charset is not utf-8', 'POST', '/'],
          [405, 'method not allowed', 'GET', '/'],
          [405, 'method not allowed', 'PUT', '/'],
          [404, 'no such route', 'GET', 'other'],
          [404, 'no such route', 'POST', 'other'],
          [404, 'no such route', 'POST', 'other'],
          [404, 'no such route', 'POST', 'other'],
          [405, 'method not allowed', 'POST', '/responses'],
          [400, 'bad /responses query', 'GET', '/responses'],
          [404, 'no such route', 'GET', 'other'],
          [404, 'no such route', 'GET', '/collections'],
          [403, 'Host is not a loopback name', 'POST', '/'],
          [403, 'request from a web page', 'GET', '/responses'],
          [403, 'request from a web page', 'POST', '/'],
          [401, 'no bearer token', 'POST', '/'],
          [401, 'wrong bearer token', 'POST', '/'],
        ].map(([status, error, method, route]) => ({
          message: 'request refused',
          status,
          error,
          method,
          route,
          client,
        })),
      );
      expect(JSON.stringify(logged)).not.toMatch(/<b>|wrong!|evil|elsewhere/);
    } finally {
      await Promise.all([open.close(), locked.close()]);
    }
    await expect(startLocalRuntime({ ...base, host: '0.0.0.0' })).rejects.toThrow(/needs a token/);
    // Beyond loopback, one that cannot be guessed; anywhere, one a header can carry.
    await expect(startLocalRuntime({ ...base, host: '0.0.0.0', token: 'a' })).rejects.toThrow(
      /needs a token of at least 16 characters \(got 1\)/,
    );
    await expect(startLocalRuntime({ ...base, token: 'tok\nX-Injected: 1' })).rejects.toThrow(
      /the token holds a space, a control or a non-ASCII character/,
    );
    await expect(startLocalRuntime({ ...base, consumers: 0 })).rejects.toThrow(
      /consumers must be an integer from 1 to 64/,
    );
  });

  /** A collections API whose adds (POST) are held until `release()`; `handled` lists the methods it was asked. */
  const heldCollections = () => {
    let held = () => {};
    const handled: string[] = [];
    const collections = {
      handles: (url: URL) => url.pathname.startsWith('/collections/'),
      handle: async ({ method }: { method: string }) => {
        handled.push(method);
        if (method === 'POST') await new Promise<void>((resolve) => (held = resolve));
        return { status: 201, body: {} };
      },
    };
    return { collections, handled, release: () => held() };
  };
  /** A face added at `route` with the token `t`. */
  const postFace = (url: string, route: string) =>
    fetch(`${url}${route}`, {
      method: 'POST',
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      body: JSON.stringify({ identity: 'a', image: 'aGVsbG8=' }),
    });

  it("adds one face at a time over the collections API, outside the frames' admission bound", async () => {
    const { collections, handled, release } = heldCollections();
    const runtime = await startLocalRuntime({ ...frameOnly(), maxInFlight: 1, token: 't', collections });
    const post = (route: string) => postFace(runtime.url, route);
    try {
      const first = post('/collections/default/faces');
      await vi.waitFor(() => expect(handled).toEqual(['POST']));
      // A second add waits its turn (503 + Retry-After); frames, and reading the collection, are not held up.
      const second = await post('/collections/default/faces');
      expect([second.status, second.headers.get('retry-after')]).toEqual([503, '1']);
      expect((await post('/')).status).toBe(200);
      const list = await fetch(`${runtime.url}/collections/default/faces`, {
        headers: { authorization: 'Bearer t' },
      });
      expect(list.status).toBe(201);
      release();
      expect((await first).status).toBe(201);
      // Its turn over, the next add is taken.
      const third = post('/collections/default/faces');
      await vi.waitFor(() => expect(handled.filter((m) => m === 'POST')).toHaveLength(2));
      release();
      expect((await third).status).toBe(201);
    } finally {
      release();
      await runtime.close();
    }
  });

  it('stopping: an add answered within the close grace is not cut off; adds sent during the stop are refused as adds', async () => {
    const { collections, handled, release } = heldCollections();
    const runtime = await startLocalRuntime({ ...frameOnly(), token: 't', collections });
    const post = () => postFace(runtime.url, '/collections/default/faces');
    try {
      const first = post();
      await vi.waitFor(() => expect(handled).toEqual(['POST']));
      // The drain gives up on the add after 300 ms; the add answers 200 ms into the second the close allows.
      const stopped = runtime.drain({ timeoutMs: 300 });
      const late = await post();
      expect([late.status, await late.json()]).toEqual([
        503,
        { error: expect.stringMatching(/^shutting down: not taking changes to the collections/) },
      ]);
      setTimeout(() => release(), 500);
      expect((await first).status).toBe(201);
      expect(await stopped).toMatchObject({ drained: true, addsCutOff: 0 });
    } finally {
      release();
      await runtime.close();
    }
  });

  it('refuses frames beyond its admission bound with 503 + Retry-After; the workload client resends them', async () => {
    const transport = new InMemoryQueueTransport({ queues: {} });
    let running = 0;
    let most = 0;
    // First held until the refusals are in (so that the sends need not overlap in time), then a slow detection
    // that answers "no face": the workload completes without recognition.
    let held = true;
    let release: () => void = () => {};
    const hold = new Promise<void>((resolve) => (release = resolve));
    const detection = noFaceDetection(transport, async () => {
      running++;
      most = Math.max(most, running);
      await (held ? hold : new Promise((r) => setTimeout(r, 40)));
      running--;
    });
    const runtime = await startLocalRuntime({ ...frameOnly(), detection, transport, maxInFlight: 2 });
    try {
      let settled = 0;
      const sends = Array.from({ length: 6 }, () =>
        fetch(runtime.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        }).finally(() => settled++),
      );
      // Two frames held in detection, the four others answered at once.
      await vi.waitFor(() => expect([running, settled]).toEqual([2, 4]), { timeout: 20_000 });
      held = false;
      release();
      const busy = await Promise.all(sends);
      const refused = busy.filter((r) => r.status === 503);
      expect(refused).toHaveLength(4);
      expect(refused[0]!.headers.get('retry-after')).toBe('1');
      const frame = { file: 'f', filename: 'f.png', expected: undefined, content: 'AA==' };
      const report = await runWorkload({
        url: runtime.url,
        frames: [frame],
        responses: localResponses(runtime.url),
        requests: 12,
        concurrency: 6,
        timeoutMs: 20_000,
      });
      expect(report.answered).toBe(12);
      expect(report.rejected).toBe(0);
      expect(report.retries).toBeGreaterThan(0);
      // Timed from the accepted send, resend waits excluded.
      expect(report.acceptedLatencyMs.max).toBeLessThan(report.latencyMs.max);
      expect(most).toBeLessThanOrEqual(2);
    } finally {
      await runtime.close();
    }
  });

  it('a large frame refused as busy or stopping gets the 503, not a connection closed mid-upload', async () => {
    const transport = new InMemoryQueueTransport({ queues: {} });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const detection = noFaceDetection(transport, () => held);
    const runtime = await startLocalRuntime({ ...frameOnly(), detection, transport, maxInFlight: 1 });
    // A frame of 4 MiB uploaded in 64 KiB pieces, as a slow link sends it: the refusal is decided while the
    // upload is under way, and must still reach the client whole. (The server used to answer and close at once;
    // under load the close could come before the client read the answer, and fetch failed with EPIPE: 2 of 200
    // 6 MiB frames in a flood of 48 at a time. That race is not reproducible in one process.)
    const upload = async () => {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent++ === 64) return controller.close();
          await new Promise((r) => setTimeout(r, 5));
          controller.enqueue(new Uint8Array(64 * 1024).fill(0x41));
        },
      });
      const res = await fetch(runtime.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        duplex: 'half',
      } as RequestInit);
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
    };
    try {
      const taken = fetch(runtime.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"request_id":"small-1"}',
      });
      await vi.waitFor(() => expect(runtime.backlog().detecting).toBe(1));
      const busy = await upload();
      expect(busy).toEqual({
        status: 503,
        retryAfter: '1',
        body: JSON.stringify({ error: 'busy: frames in flight at the limit; retry later', request_id: null }),
      });
      // Sent whole before the answer is read (Python's urllib), up to twice the body limit: the 503 too, not a
      // broken pipe (EPIPE, 3 of 3 before).
      const { port } = new URL(runtime.url);
      const whole = await sendWhole(port, 5 * 1024 * 1024);
      expect(whole.writeError).toBeUndefined();
      expect(whole.reply).toMatch(/^HTTP\/1\.1 503 [\s\S]*busy: frames in flight at the limit/);
      // A client that asks first (Expect: 100-continue, as curl does above 1 MiB) is refused before it uploads,
      // not asked for a body that is then refused.
      const expecting = frameHead(port, 5000000, 'Expect: 100-continue\r\n');
      expect(await rawRequest(port, expecting)).toMatch(
        /^HTTP\/1\.1 503 [^\n]*\r\n[\s\S]*busy: frames in flight at the limit/,
      );
      // One declared over the body limit gets its 413 busy or not: a 503 would have it resent, for nothing.
      const tooLarge = await sendWhole(port, 12 * 1024 * 1024);
      expect(tooLarge.writeError).toBeUndefined();
      expect(tooLarge.reply).toMatch(/^HTTP\/1\.1 413 [\s\S]*body exceeds the server's limit/);
      const draining = runtime.drain({ timeoutMs: 20_000 });
      const stopping = await upload();
      expect([stopping.status, stopping.retryAfter]).toEqual([503, '5']);
      const wholeStopping = await sendWhole(port, 5 * 1024 * 1024);
      expect(wholeStopping.writeError).toBeUndefined();
      expect(wholeStopping.reply).toMatch(/^HTTP\/1\.1 503 [\s\S]*retry-after: 5/i);
      expect(await rawRequest(port, expecting)).toMatch(/^HTTP\/1\.1 503 [\s\S]*retry-after: 5/i);
      release();
      expect((await taken).status).toBe(200);
      await fetch(`${runtime.url}/responses?prefix=small-&wait=1`); // collected: the drain can end
      await draining;
    } finally {
      release();
      await runtime.close();
    }
  });

  it('drains on request: refuses frames with 503, keeps answering polls until every answer is collected', async () => {
    const transport = new InMemoryQueueTransport({ queues: {} });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    // Detection that waits for the test, then answers "no face".
    const detection = noFaceDetection(transport, () => held);
    const runtime = await startLocalRuntime({ ...frameOnly(), detection, transport });
    const post = (body: string) =>
      fetch(runtime.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const taken = post('{"request_id":"a-1"}');
    await vi.waitFor(() => expect(runtime.backlog().detecting).toBe(1));
    const draining = runtime.drain({ timeoutMs: 20_000 });
    // New frames are refused, with a reason and a Retry-After; health says so.
    const refused = await post('{"request_id":"a-2"}');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toMatchObject({ error: expect.stringMatching(/shutting down/) });
    const health = await fetch(`${runtime.url}/health`);
    expect([health.status, ((await health.json()) as { status: string }).status]).toEqual([503, 'draining']);
    // The frame taken before is detected, and its answer can still be collected.
    release();
    expect((await taken).status).toBe(200);
    await vi.waitFor(() =>
      expect(runtime.backlog()).toEqual({ detecting: 0, recognising: 0, uncollected: 1, adding: 0 }),
    );
    const polled = (await (await fetch(`${runtime.url}/responses?prefix=a-&wait=1`)).json()) as {
      messages: { request_id: string }[];
    };
    expect(polled.messages.map((m) => m.request_id)).toEqual(['a-1']);
    const report = await draining;
    expect(report.drained).toBe(true);
    expect(report.waitedMs).toBeLessThan(15_000);
    // Closed: nothing listens any more.
    await expect(post('{}')).rejects.toThrow();
  });

  it('counts what a detection still running at the stop left: its queued faces, and its frame as cut off', async () => {
    const transport = new InMemoryQueueTransport({ queues: {} });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const detection = async () => {
      await held;
      await transport.publish(
        'q',
        [1, 2, 3].map((i) => ({ body: JSON.stringify({ face_index: i }) })),
      );
      return { statusCode: 200, headers: {}, body: '{"faces":3}' };
    };
    const runtime = await startLocalRuntime({ ...frameOnly(), detection, transport });
    const taken = fetch(runtime.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"request_id":"late-1"}',
    }).then(
      (r) => r.status,
      () => 'connection closed',
    );
    await vi.waitFor(() => expect(runtime.backlog().detecting).toBe(1));
    const draining = runtime.drain({ timeoutMs: 100 });
    // Ends after the wait (100 ms) and the grace (1 s) closed its connection.
    setTimeout(release, 1_500);
    const report = await draining;
    // Counted before the detection ended, the report said 1 frame detecting and 0 faces.
    expect(report).toMatchObject({
      drained: false,
      cutOff: 1,
      left: { detecting: 0, recognising: 3, uncollected: 0, adding: 0 },
    });
    expect(await taken).toBe('connection closed');
  });

  it('ends a drain after its timeout, or at once when its signal aborts, reporting what was left', async () => {
    for (const how of ['timeout', 'signal'] as const) {
      const transport = new InMemoryQueueTransport({ queues: {} });
      const runtime = await startLocalRuntime({ ...frameOnly(), transport });
      // An answer nobody collects.
      await transport.publish('r', [{ body: JSON.stringify({ request_id: 'gone-1', result: 'no face' }) }]);
      await vi.waitFor(() => expect(runtime.backlog().uncollected).toBe(1));
      const stop = new AbortController();
      const started = performance.now();
      const draining = runtime.drain(how === 'timeout' ? { timeoutMs: 300 } : { signal: stop.signal });
      if (how === 'signal') setTimeout(() => stop.abort(), 100);
      const report = await draining;
      expect(report).toMatchObject({
        drained: false,
        left: { detecting: 0, recognising: 0, uncollected: 1, adding: 0 },
      });
      // The default timeout (10 s) did not run out: the signal ended the wait.
      expect(performance.now() - started).toBeLessThan(how === 'timeout' ? 3_000 : 2_000);
    }
  });

  it('the workload client resends frames whose connection was refused, as while a server restarts', async () => {
    // A port nothing listens on yet.
    const probe = await startLocalRuntime(frameOnly());
    const url = probe.url;
    await probe.close();
    const transport = new InMemoryQueueTransport({ queues: {} });
    const frame = { file: 'f', filename: 'f.png', expected: undefined, content: 'AA==' };
    const notices: boolean[] = [];
    const running = runWorkload({
      url,
      frames: [frame],
      responses: localResponses(url),
      requests: 3,
      concurrency: 3,
      timeoutMs: 20_000,
      onUnreachable: (unreachable) => notices.push(unreachable),
    });
    await new Promise((r) => setTimeout(r, 700));
    // The server comes (back): detection answers "no face" at once.
    const runtime = await startLocalRuntime({
      ...frameOnly(),
      port: Number(new URL(url).port),
      transport,
      detection: noFaceDetection(transport),
    });
    try {
      const report = await running;
      expect(report).toMatchObject({ answered: 3, rejected: 0, failed: 0, duplicates: 0 });
      expect(report.reconnects).toBeGreaterThanOrEqual(3);
      expect(notices).toEqual([true, false]);
    } finally {
      await runtime.close();
    }
    // Unreachable for longer than its reconnect window: every request fails at once, without 8 backoffs each.
    const started = performance.now();
    const down = await runWorkload({
      url,
      frames: [frame],
      responses: localResponses(url),
      requests: 6,
      concurrency: 2,
      reconnectWindowMs: 500,
      timeoutMs: 1_000,
    });
    // Never delivered: failed to send, not rejected (no server answered).
    expect(down).toMatchObject({ answered: 0, rejected: 0, failed: 6 });
    expect(formatWorkloadReport(down)[0]).toContain('rejected: 0, failed to send: 6,');
    expect(performance.now() - started).toBeLessThan(6_000);
    // With nothing listening, it gives up after its resends and says why.
    const alone = await runWorkload({
      url,
      frames: [frame],
      responses: localResponses(url),
      requests: 1,
      maxRetries: 1,
      timeoutMs: 1_000,
    });
    expect(alone).toMatchObject({ answered: 0, rejected: 0, failed: 1, reconnects: 1 });
    expect(alone.outcomes[0]!.error).toBe(`connection refused: nothing listens at ${url}`);
  });

  it('the workload client gives up on answers that never come the timeout after its last send, not twice that', async () => {
    // Frames taken (200, one face each) whose answers never come.
    const runtime = await startLocalRuntime({
      ...frameOnly(),
      detection: async () => ({ statusCode: 200, headers: {}, body: '{"faces":1}' }),
    });
    try {
      const started = performance.now();
      const report = await runWorkload({
        url: runtime.url,
        frames: [{ file: 'f', filename: 'f.png', expected: undefined, content: 'AA==' }],
        responses: localResponses(runtime.url),
        requests: 2,
        concurrency: 1,
        timeoutMs: 2_000,
      });
      expect(report).toMatchObject({ answered: 0, rejected: 0 });
      expect(report.unanswered).toHaveLength(2);
      // The worker waits 2 s for the first frame, sends the second, and the run ends 2 s after that send
      // (≈ 4 s; it took 6 s when the last wait started from the end of the sending).
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await runtime.close();
    }
  });

  it('the workload client resends a frame whose connection was reset; taken, it is refused 409 and waited for', async () => {
    const transport = new InMemoryQueueTransport({ queues: {} });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let took!: () => void;
    const taken = new Promise<void>((resolve) => (took = resolve));
    // Detection takes the frame, then waits for the gate before answering it.
    const runtime = await startLocalRuntime({
      ...frameOnly(),
      transport,
      detection: noFaceDetection(transport, async () => {
        took();
        await gate;
      }),
    });
    try {
      const post = jsonSender();
      const statuses: number[] = [];
      let sends = 0;
      const report = await runWorkload({
        url: runtime.url,
        frames: [{ file: 'f', filename: 'f.png', expected: undefined, content: 'AA==' }],
        responses: localResponses(runtime.url),
        requests: 1,
        timeoutMs: 10_000,
        send: async (url, body) => {
          if (++sends === 1) {
            // The frame reaches the server, and the connection is lost before its answer comes back.
            void post(url, body).then((r) => statuses.push(r.status));
            await taken;
            throw new TypeError('fetch failed', {
              cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
            });
          }
          const resent = await post(url, body);
          statuses.push(resent.status);
          open();
          return resent;
        },
      });
      // The resend, refused while the server had the frame; then the first send's own answer (lost to the client).
      await vi.waitFor(() => expect(statuses).toEqual([409, 200]));
      expect(report).toMatchObject({ answered: 1, rejected: 0, failed: 0, duplicates: 0, resetResends: 1 });
      expect(report.outcomes[0]).toMatchObject({ status: 200, faces: 0, results: ['no face'] });
      expect(formatWorkloadReport(report)[0]).toContain('frames resent after a reset connection: 1');
    } finally {
      await runtime.close();
    }
  });

  it('fails on a port already in use and stops its consumers (nothing keeps running)', async () => {
    const handled: number[] = [];
    const first = await start(async () => ({ batchItemFailures: [] }));
    try {
      const port = Number(new URL(first.runtime.url).port);
      const transport = new InMemoryQueueTransport({ queues: {} });
      const second = startLocalRuntime({
        detection: notUsed,
        recognition: async (event) => {
          handled.push(event.Records.length);
          return { batchItemFailures: [] };
        },
        transport,
        requestQueue: 'requests',
        responseQueue: 'responses',
        port,
      });
      await expect(second).rejects.toThrow(/EADDRINUSE/);
      // Its consumers are gone: a message published now is never taken off the queue.
      await transport.publish('requests', [{ id: 'late', body: 'x' }]);
      await new Promise((r) => setTimeout(r, 200));
      expect(handled).toEqual([]);
      expect(transport.depth('requests')).toBe(1);
    } finally {
      await first.runtime.close();
    }
  });
});

describeWithSharedData(
  'local runtime (HTTP + in-process queue + recognition consumer)',
  PIPELINE_DATA,
  () => {
    async function start(options: { killFirstBatch?: boolean; visibilityTimeoutSeconds?: number } = {}) {
      const { detector, embedder, gallery } = await pipelineParts();
      const transport = new InMemoryQueueTransport({
        queues: {
          requests: {
            visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30,
            maxReceiveCount: 5,
            deadLetterQueue: 'requests-dlq',
          },
        },
      });
      const recognise = createRecognitionRecordHandler({
        embedder,
        gallery,
        transport,
        responseQueue: 'responses',
      });
      let invocations = 0;
      // The runtime feeds `handleRecords` the queue's messages as they are, without an SQS event.
      const recognition = sqsBatchHandler(async (records) => {
        invocations++;
        // The first invocation "dies" before acknowledging anything, like a Lambda killed mid-batch.
        if (options.killFirstBatch && invocations === 1) throw new Error('killed');
        return recognise(records);
      });
      const runtime = await startLocalRuntime({
        detection: createDetectionHandler({
          detector,
          crop: embedder.preprocessing.crop,
          transport,
          requestQueue: 'requests',
          responseQueue: 'responses',
        }),
        recognition,
        transport,
        requestQueue: 'requests',
        responseQueue: 'responses',
        port: 0,
      });
      return { runtime, transport, invocations: () => invocations };
    }

    it('gives two clients running at once every one of their own answers', { timeout: 120_000 }, async () => {
      const { runtime } = await start();
      try {
        const frames = await loadFrames(bbtSubset([3, 4]));
        const run = () =>
          runWorkload({
            url: runtime.url,
            frames,
            responses: localResponses(runtime.url),
            requests: 40,
            concurrency: 8,
            timeoutMs: 30_000,
          });
        const [a, b] = await Promise.all([run(), run()]);
        for (const report of [a, b]) {
          expect(report.answered).toBe(40);
          expect(report.unanswered).toEqual([]);
          expect(report.duplicates).toBe(0);
        }
      } finally {
        await runtime.close();
      }
    });

    it('answers every request exactly once, naming the probes', async () => {
      const { runtime, transport } = await start();
      try {
        const frames = await loadFrames(bbtSubset([3, 4]));
        const report = await runWorkload({
          url: runtime.url,
          frames,
          responses: localResponses(runtime.url),
          requests: 32,
          concurrency: 8,
        });
        expect(report.answered).toBe(32);
        expect(report.unanswered).toEqual([]);
        expect(report.rejected).toBe(0);
        expect(report.duplicates).toBe(0);
        expect(report.accuracy.faces).toBe(32);
        expect(report.accuracy.correct).toBeGreaterThanOrEqual(28);
        expect(transport.depth('requests-dlq')).toBe(0);
        console.log(
          `local runtime: 32 requests, avg ${report.latencyMs.avg.toFixed(0)} ms, p95 ${report.latencyMs.p95.toFixed(0)} ms, accuracy ${report.accuracy.correct}/32`,
        );
      } finally {
        await runtime.close();
      }
    });

    it('redelivers and answers the messages of a recognition invocation killed mid-batch', async () => {
      const { runtime, invocations } = await start({ killFirstBatch: true, visibilityTimeoutSeconds: 1 });
      try {
        const frames = await loadFrames(bbtSubset([3]));
        const report = await runWorkload({
          url: runtime.url,
          frames,
          responses: localResponses(runtime.url),
          requests: 8,
          concurrency: 8,
          timeoutMs: 20_000,
        });
        expect(invocations()).toBeGreaterThanOrEqual(2);
        expect(report.answered).toBe(8);
        expect(report.duplicates).toBe(0);
      } finally {
        await runtime.close();
      }
    });

    it('answers 4xx for malformed requests over HTTP', async () => {
      const { runtime } = await start();
      try {
        const bad = await fetch(runtime.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{',
        });
        expect(bad.status).toBe(400);
        expect(await bad.json()).toMatchObject({ error: expect.any(String), request_id: null });
        const big = await fetch(runtime.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: 'x'.repeat(7 * 1024 * 1024),
        });
        expect(big.status).toBe(413);
        // Declared larger than the limit: refused at once, not after the body (or 5 s of a trickle of it).
        const started = performance.now();
        const { port } = new URL(runtime.url);
        const declared = await rawRequest(port, `${frameHead(port, 999999999999)}{`);
        expect(declared).toMatch(/^HTTP\/1\.1 413 /);
        expect(performance.now() - started).toBeLessThan(4000);
        // Also when the client asks first (Expect: 100-continue): no "100 Continue" for a body that is refused.
        const asked = await rawRequest(port, frameHead(port, 7000000, 'Expect: 100-continue\r\n'));
        expect(asked).toMatch(/^HTTP\/1\.1 413 /);
        // A request without Host is refused as one with a foreign Host (403, with why), not Node's bare 400.
        const hostless = await rawRequest(port, 'GET /health HTTP/1.1\r\n\r\n');
        expect(hostless).toMatch(/^HTTP\/1\.1 403 [\s\S]*Host must be a loopback name/);
      } finally {
        await runtime.close();
      }
    });
  },
);
