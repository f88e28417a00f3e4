/**
 * `@facerec/transport-memory`: an in-process facerec `Transport` with SQS's semantics (visibility timeout,
 * receive counts, dead-letter queues, long polling), for local runs and tests, and the injectable clock it
 * runs on.
 *
 * @packageDocumentation
 */
export { type Clock, ManualClock, systemClock, type TimerHandle } from './clock.js';
export {
  DEFAULT_QUEUE_CONFIG,
  IN_MEMORY_QUEUE_LIMITS,
  InMemoryQueueTransport,
  type InMemoryQueueTransportOptions,
  type QueueConfig,
} from './memory-queue.js';
