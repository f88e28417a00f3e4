import { createServer, type Socket } from 'node:net';
import { SQSClient } from '@aws-sdk/client-sqs';
import { expect, it, vi } from 'vitest';
import { createSqsTransport, DEFAULT_REQUEST_TIMEOUT_MS, PublishError } from '../src/index.js';

// A real client against a real (silent) socket: this file does not load the SDK mock of helpers.ts.
it('gives up on a stalled connection after requestTimeoutMs per attempt (a long poll: plus its wait), as a retried TimeoutError', async () => {
  // An endpoint that accepts the connection and never answers.
  const sockets: Socket[] = [];
  const server = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    expect(() => createSqsTransport({ client: new SQSClient({}), requestTimeoutMs: 1000 })).toThrow(
      /either `client` or/,
    );
    const transport = createSqsTransport({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      requestTimeoutMs: 300,
      retry: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 },
    });
    const started = performance.now();
    const error = await transport
      .publish(`http://127.0.0.1:${port}/000000000000/requests`, [{ id: 'a', body: '{}' }])
      .catch((e: unknown) => e);
    await transport.close();
    const ms = performance.now() - started;
    expect(error).toBeInstanceOf(PublishError);
    expect((error as PublishError).failures).toMatchObject([{ id: 'a', attempts: 2 }]);
    expect(sockets.length).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(550);
    expect(ms).toBeLessThan(5000);
    expect(DEFAULT_REQUEST_TIMEOUT_MS).toBe(5000);

    // A publish given a signal (a Lambda invocation's deadline) gives up when it aborts: no more attempts or
    // backoff, every message listed as not published, the reason as the cause.
    const bounded = createSqsTransport({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      requestTimeoutMs: 300,
      retry: { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 1000 },
    });
    const boundedStart = performance.now();
    const cut = await bounded
      .publish(
        `http://127.0.0.1:${port}/000000000000/requests`,
        [
          { id: 'x', body: '{}' },
          { id: 'y', body: '{}' },
        ],
        { signal: AbortSignal.timeout(700) },
      )
      .catch((e: unknown) => e);
    await bounded.close();
    const boundedMs = performance.now() - boundedStart;
    expect(cut).toBeInstanceOf(PublishError);
    expect((cut as PublishError).failures.map((f) => [f.id, f.code])).toEqual([
      ['x', 'TimeoutError'],
      ['y', 'TimeoutError'],
    ]);
    expect((cut as PublishError).publishedIds).toEqual([]);
    expect((cut as Error).cause).toMatchObject({ name: 'TimeoutError' });
    // Without the signal: 5 attempts of 300 ms and 4 backoffs of 0.5–1 s, over 3 s.
    expect(boundedMs).toBeGreaterThanOrEqual(650);
    expect(boundedMs).toBeLessThan(1500);

    // A long poll gets its wait on top: a 1 s poll is not cut at 300 ms.
    const poller = createSqsTransport({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      requestTimeoutMs: 300,
      retry: { maxAttempts: 1 },
    });
    const polled = performance.now();
    const pollError = await poller
      .receive(`http://127.0.0.1:${port}/000000000000/requests`, { waitTimeSeconds: 1 })
      .catch((e: unknown) => e);
    await poller.close();
    expect(String(pollError)).toMatch(/1300 ms requestTimeout/);
    expect(performance.now() - polled).toBeGreaterThanOrEqual(1250);
  } finally {
    vi.unstubAllEnvs();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
