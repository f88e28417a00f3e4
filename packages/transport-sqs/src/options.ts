import type { SQSClient } from '@aws-sdk/client-sqs';
import { InvalidOptionsError, parseOptions } from '@facerec/framework';
import { z } from 'zod';
import { SQS_LIMITS } from './limits.js';
import { defaultSleep, type RetryPolicy, type Sleep } from './retry.js';

/** The package name, which option errors name. */
export const PACKAGE = '@facerec/transport-sqs';

/** Retry settings; each merged over {@link DEFAULT_RETRY}. */
export interface RetryOptions {
  /** Attempts per request, the first included (1–20). Default 5. */
  readonly maxAttempts?: number;
  /** Ceiling of the first backoff, in ms; it doubles per retry. Default 100. */
  readonly baseDelayMs?: number;
  /** Largest backoff, in ms. Default 5000. */
  readonly maxDelayMs?: number;
}

/** Options of {@link createSqsTransport}; all optional. */
export interface SqsTransportOptions {
  /**
   * The client to use, configured as you need. Without one the transport creates a client from `region` and
   * `endpoint` with the SDK's own retries off (`maxAttempts: 1`), so that `retry` is the only retry policy in
   * force; it is destroyed by `close()`.
   */
  readonly client?: SQSClient;
  /** AWS region of the created client. Default: the SDK's (`AWS_REGION`, the shared config). */
  readonly region?: string;
  /** Endpoint of any SQS-compatible server (ElasticMQ, LocalStack), for the created client. */
  readonly endpoint?: string;
  /**
   * Largest message, body and attributes counted as SQS counts them (see `messageSizeBytes`), and largest
   * total payload of one batch request. 1024–1048576. Default 262144 (256 KiB, SQS's classic limit).
   */
  readonly maxMessageBytes?: number;
  /** Retries of throttled, failed or partially failed requests. */
  readonly retry?: RetryOptions;
  /**
   * For the created client: how long one request may take, connection included, before it fails as a
   * `TimeoutError` (retried under `retry`); a long poll gets its wait on top. 100–120000. Default 5000: without
   * it a stalled connection would hold a publish until the Lambda function timed out.
   */
  readonly requestTimeoutMs?: number;
  /** How the transport waits between retries. Default: real timers. Tests inject a recorder. */
  readonly sleep?: Sleep;
}

/** Resolved {@link SqsTransportOptions}. */
export interface ResolvedSqsTransportOptions {
  readonly client: SQSClient | undefined;
  readonly region: string | undefined;
  readonly endpoint: string | undefined;
  readonly maxMessageBytes: number;
  readonly retry: RetryPolicy;
  readonly requestTimeoutMs: number;
  readonly sleep: Sleep;
}

/** Default {@link SqsTransportOptions.requestTimeoutMs}. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** Default retry policy: 5 attempts, backoff ceilings of 100, 200, 400, 800 ms, never above 5 s. */
export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 100,
  maxDelayMs: 5000,
});

const retrySchema = z
  .object({
    maxAttempts: z.number().int().min(1).max(20),
    baseDelayMs: z.number().min(0).max(60_000),
    maxDelayMs: z.number().min(0).max(300_000),
  })
  .partial()
  .strict();

const schema = z
  .object({
    client: z.custom<SQSClient>(
      (value) =>
        typeof value === 'object' &&
        value !== null &&
        typeof (value as { send?: unknown }).send === 'function',
      'must be an SQSClient',
    ),
    region: z.string().min(1),
    endpoint: z.url(),
    maxMessageBytes: z.number().int().min(1024).max(SQS_LIMITS.maxMessageBytes),
    retry: retrySchema,
    requestTimeoutMs: z.number().int().min(100).max(120_000),
    sleep: z.custom<Sleep>((value) => typeof value === 'function', 'must be a function'),
  })
  .partial()
  .strict();

/**
 * Merges `options` over the defaults and validates them once.
 *
 * @throws {InvalidOptionsError} naming `@facerec/transport-sqs` and the bad or unknown key.
 */
export function resolveSqsTransportOptions(options: SqsTransportOptions = {}): ResolvedSqsTransportOptions {
  const settings = parseOptions(schema, options, PACKAGE);
  const { client, region, endpoint } = settings;
  if (client && (region !== undefined || endpoint !== undefined || settings.requestTimeoutMs !== undefined)) {
    throw new InvalidOptionsError(
      PACKAGE,
      'pass either `client` or `region`/`endpoint`/`requestTimeoutMs` (to configure the client the transport creates), not both',
    );
  }
  const retry = { ...DEFAULT_RETRY, ...settings.retry };
  if (retry.maxDelayMs < retry.baseDelayMs) {
    throw new InvalidOptionsError(
      PACKAGE,
      `retry.maxDelayMs (${retry.maxDelayMs}) must not be below retry.baseDelayMs (${retry.baseDelayMs})`,
    );
  }
  return {
    client,
    region,
    endpoint,
    maxMessageBytes: settings.maxMessageBytes ?? SQS_LIMITS.defaultMaxMessageBytes,
    retry,
    requestTimeoutMs: settings.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    sleep: settings.sleep ?? defaultSleep,
  };
}
