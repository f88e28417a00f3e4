import { setTimeout as delay } from 'node:timers/promises';

/** Bounded exponential backoff with jitter; see {@link backoffDelayMs}. */
export interface RetryPolicy {
  /** Attempts per request, the first included (1 = no retries). */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Waits `ms` milliseconds; rejects when `signal` aborts. Injectable so tests do not wait. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** The real {@link Sleep}. */
export const defaultSleep: Sleep = (ms, signal) => delay(ms, undefined, signal ? { signal } : undefined);

/**
 * The wait before retry number `retry` (1 after the first failure): "equal jitter" over a ceiling that doubles
 * per retry up to `maxDelayMs`, i.e. uniform in [ceiling / 2, ceiling] with ceiling = min(maxDelayMs,
 * baseDelayMs · 2^(retry−1)). Half the ceiling is kept so the waits grow even with jitter; the random half
 * keeps many consumers that failed together from retrying in lock step.
 */
export function backoffDelayMs(
  policy: RetryPolicy,
  retry: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

// Error names SQS and the SDK use for throttling and service-side trouble: worth another try.
const RETRYABLE_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'KmsThrottled',
  'SlowDown',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'NetworkingError',
]);

// Node's codes for connections that failed or broke: the request may not have reached SQS, so try again.
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * True for errors of a whole SQS call that may succeed when repeated: throttling, 5xx responses, timeouts and
 * network failures. Client errors (access denied, no such queue, invalid parameters) are not retried.
 */
export function isRetryableError(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 4) return false;
  const { name, code, $retryable, $metadata, cause } = error as {
    name?: unknown;
    code?: unknown;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: unknown };
    cause?: unknown;
  };
  if (name === 'AbortError') return false;
  if (typeof name === 'string' && RETRYABLE_NAMES.has(name)) return true;
  if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return true;
  if ($retryable) return true;
  const status = $metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  // fetch-style errors wrap the socket error in `cause`.
  return isRetryableError(cause, depth + 1);
}
