/**
 * Provider-free transport pieces: the in-memory queue, the clock it runs on, and the message checks every
 * transport shares (size as SQS counts it, ids, receive options).
 *
 * @packageDocumentation
 */
export { type Clock, ManualClock, systemClock, type TimerHandle } from './clock.js';
export { InvalidMessageError, InvalidReceiptError, MessageTooLargeError } from './errors.js';
export {
  DEFAULT_QUEUE_CONFIG,
  InMemoryQueueTransport,
  type InMemoryQueueTransportOptions,
  type QueueConfig,
} from './memory-queue.js';
export {
  assertVisibilityTimeout,
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_BATCH_ENTRIES,
  MAX_MESSAGE_BYTES_LIMIT,
  MAX_VISIBILITY_TIMEOUT_SECONDS,
  MAX_WAIT_TIME_SECONDS,
  messageSizeBytes,
  type PreparedMessage,
  prepareOutboundMessages,
  type ResolvedReceiveOptions,
  resolveReceiveOptions,
} from './message.js';
