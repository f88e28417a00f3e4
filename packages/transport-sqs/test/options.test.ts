import { SQSClient } from '@aws-sdk/client-sqs';
import { InvalidOptionsError, SPECIFICATION_VERSION } from '@facerec/framework';
import { afterEach, describe, expect, it } from 'vitest';
import {
  assertSqsQueueUrl,
  backoffDelayMs,
  createSqsTransport,
  DEFAULT_RETRY,
  isRetryableError,
  resolveSqsTransportOptions,
} from '../src/index.js';
import { serviceError } from './helpers.js';

const created: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(created.splice(0).map((transport) => transport.close()));
});

describe('createSqsTransport options', () => {
  it('creates a client with the given region and endpoint, and the SDK retries off', async () => {
    const transport = createSqsTransport({ region: 'eu-west-3', endpoint: 'http://localhost:9324/' });
    created.push(transport);
    expect(await transport.client.config.region()).toBe('eu-west-3');
    const endpoint = await transport.client.config.endpoint?.();
    expect(endpoint).toMatchObject({ protocol: 'http:', hostname: 'localhost', port: 9324 });
    expect(await transport.client.config.maxAttempts()).toBe(1);
  });

  it('refuses a queue that is no SQS queue URL before sending, without repeating it', async () => {
    const transport = createSqsTransport({ region: 'eu-west-3' });
    created.push(transport);
    for (const queue of ['requests', '   ', 'file:///tmp/q', 'https://sqs.eu-west-3.amazonaws.com']) {
      const error = await transport.publish(queue, [{ body: 'x' }]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect(String(error)).toContain('queue must be an SQS queue URL');
    }
    expect(() => assertSqsQueueUrl('https://sqs.eu-west-3.amazonaws.com/1/q', 'X')).not.toThrow();
    expect(() => assertSqsQueueUrl('requests', 'FACEREC_REQUEST_QUEUE_URL')).toThrow(
      /FACEREC_REQUEST_QUEUE_URL must be an SQS queue URL/,
    );
  });

  it('uses the client it is given, as is', () => {
    const client = new SQSClient({ region: 'us-east-2' });
    const transport = createSqsTransport({ client });
    expect(transport.client).toBe(client);
    expect(transport.specificationVersion).toBe(SPECIFICATION_VERSION);
  });

  it('merges options over the documented defaults', () => {
    const resolved = resolveSqsTransportOptions({ retry: { maxAttempts: 2 } });
    expect(resolved.maxMessageBytes).toBe(262_144);
    expect(resolved.retry).toEqual({ maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 5000 });
    expect(DEFAULT_RETRY).toEqual({ maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 5000 });
    expect(resolveSqsTransportOptions().retry).toEqual(DEFAULT_RETRY);
  });

  it.each([
    [{ regoin: 'eu-west-1' }, /regoin/],
    [{ retry: { attempts: 3 } }, /attempts/],
    [{ retry: { maxAttempts: 0 } }, /retry\.maxAttempts/],
    [{ maxMessageBytes: 2_000_000 }, /maxMessageBytes/],
    [{ endpoint: 'not a url' }, /endpoint/],
    [{ retry: { baseDelayMs: 500, maxDelayMs: 100 } }, /maxDelayMs/],
    [{ client: new SQSClient({}), region: 'eu-west-1' }, /either `client` or/],
    [{ requestTimeoutMs: 50 }, /requestTimeoutMs/],
    [{ client: {} }, /client/],
  ])('rejects %o with InvalidOptionsError naming the package', (options, pattern) => {
    const error = (() => {
      try {
        createSqsTransport(options as never);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).component).toBe('@facerec/transport-sqs');
    expect((error as Error).message).toMatch(pattern);
  });
});

describe('retry policy', () => {
  it('computes equal-jitter delays within [ceiling/2, ceiling]', () => {
    const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 300 };
    expect([1, 2, 3, 4].map((retry) => backoffDelayMs(policy, retry, () => 0))).toEqual([50, 100, 150, 150]);
    expect([1, 2, 3, 4].map((retry) => backoffDelayMs(policy, retry, () => 1))).toEqual([100, 200, 300, 300]);
  });

  it('retries throttling, 5xx and network errors, not client errors or aborts', () => {
    expect(isRetryableError(serviceError('ThrottlingException', 400))).toBe(true);
    expect(isRetryableError(serviceError('KmsThrottled', 400))).toBe(true);
    expect(isRetryableError(serviceError('Whatever', 502))).toBe(true);
    expect(isRetryableError(new Error('fetch failed', { cause: { code: 'ECONNRESET' } }))).toBe(true);
    expect(isRetryableError(serviceError('AccessDenied', 403))).toBe(false);
    expect(isRetryableError(serviceError('QueueDoesNotExist', 400))).toBe(false);
    expect(isRetryableError(new DOMException('aborted', 'AbortError'))).toBe(false);
    expect(isRetryableError('nope')).toBe(false);
  });
});
