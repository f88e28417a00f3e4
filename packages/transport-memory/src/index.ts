/**
 * `@facerec/transport-memory`: an in-process facerec `Transport` with SQS's semantics (visibility timeout,
 * receive counts, dead-letter queues, long polling, optional deduplication), for local runs and tests, the
 * injectable clock it runs on, and an optional SQLite journal that makes its queues durable.
 *
 * @packageDocumentation
 */
export { type Clock, ManualClock, systemClock, type TimerHandle } from './clock.js';
export { QueueFileError } from './errors.js';
export type {
  JournalChanges,
  JournalContents,
  JournalDeduplication,
  JournalMessage,
  QueueJournal,
} from './journal.js';
export {
  DEFAULT_QUEUE_CONFIG,
  type DeadLettered,
  IN_MEMORY_QUEUE_LIMITS,
  InMemoryQueueTransport,
  type InMemoryQueueTransportOptions,
  type QueueConfig,
} from './memory-queue.js';
export { openSqliteQueueJournal } from './sqlite-journal.js';
