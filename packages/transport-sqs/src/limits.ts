import type { ReceiveLimits } from '@facerec/framework/internal';

/**
 * Amazon SQS's quotas that the transport enforces before calling SQS, so that a bad request fails with a
 * clear error naming the option instead of an SQS `InvalidParameterValue`.
 *
 * - `maxMessages`, `maxWaitTimeSeconds`, `maxVisibilityTimeoutSeconds`: the `ReceiveMessage` ranges
 *   (10 messages, a 20 s long poll, 12 hours); the first two are also `receive`'s defaults.
 * - `maxBatchEntries`: entries per `SendMessageBatch` and `DeleteMessageBatch` request.
 * - `defaultMaxMessageBytes`: the classic message size limit, 256 KiB; `maxMessageBytes`: the current
 *   ceiling, 1 MiB.
 */
export const SQS_LIMITS: Readonly<
  ReceiveLimits & { maxBatchEntries: number; defaultMaxMessageBytes: number; maxMessageBytes: number }
> = Object.freeze({
  maxMessages: 10,
  maxWaitTimeSeconds: 20,
  maxVisibilityTimeoutSeconds: 43_200,
  maxBatchEntries: 10,
  defaultMaxMessageBytes: 262_144,
  maxMessageBytes: 1_048_576,
});
