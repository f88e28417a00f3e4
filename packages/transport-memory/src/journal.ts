/** One stored message, as a {@link QueueJournal} keeps it. */
export interface JournalMessage {
  /** Arrival order, unique across the journal's life. */
  readonly seq: number;
  readonly queue: string;
  readonly id: string;
  readonly body: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly receiveCount: number;
  /** Clock time from which the message may be delivered. */
  readonly visibleAt: number;
  readonly delivery: number;
}

/** A message id published to a queue with deduplication, remembered until `until` (clock time). */
export interface JournalDeduplication {
  readonly queue: string;
  readonly id: string;
  readonly until: number;
}

/** What one transport operation changed; a journal writes it as one atomic transaction. */
export interface JournalChanges {
  /** Messages added or changed (by `seq`). */
  readonly put?: readonly JournalMessage[];
  /** Messages removed (by `seq`). */
  readonly delete?: readonly number[];
  /** Message ids to refuse as duplicates for a while. */
  readonly deduplication?: readonly JournalDeduplication[];
}

/** What a journal holds when a transport opens it. */
export interface JournalContents {
  /** Every message, in `seq` order. */
  readonly messages: readonly JournalMessage[];
  /** The deduplication entries still in their window. */
  readonly deduplication: readonly JournalDeduplication[];
}

/**
 * Durable storage behind an `InMemoryQueueTransport`: the transport keeps its queues in memory and writes every
 * change here before the operation completes (a `publish` resolves only once its messages are in the journal),
 * and reloads the journal when it is constructed. The methods are synchronous on purpose: the transport's
 * bookkeeping (receive, visibility, redrive) stays one piece of code, and nothing can interleave between a
 * change being written and being applied. See `openSqliteQueueJournal`.
 */
export interface QueueJournal {
  /** Everything stored; deduplication entries whose window ended before `now` may be left out. */
  load(now: number): JournalContents;
  /** Writes `changes` atomically and durably before returning; throws when it cannot (nothing is applied). */
  commit(changes: JournalChanges, now: number): void;
  /** Releases the storage. */
  close(): void;
}
