/**
 * `@facerec/transport-sqs`: the facerec `Transport` on Amazon SQS (or any SQS-compatible server), with
 * batching, per-entry retries with bounded backoff, size checks shared with the in-memory transport, and
 * typed errors that list what failed.
 *
 * @packageDocumentation
 */
export {
  AcknowledgeError,
  type AcknowledgeFailure,
  InvalidMessageError,
  InvalidReceiptError,
  MessageTooLargeError,
  PublishError,
  type PublishFailure,
  SqsRequestError,
} from './errors.js';
export { SQS_LIMITS } from './limits.js';
export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY,
  type ResolvedSqsTransportOptions,
  type RetryOptions,
  resolveSqsTransportOptions,
  type SqsTransportOptions,
} from './options.js';
export { backoffDelayMs, isRetryableError, type RetryPolicy, type Sleep } from './retry.js';
export { assertSqsQueueUrl, createSqsTransport, SqsTransport } from './transport.js';
