import { randomUUID } from 'node:crypto';
import {
  DisposedError,
  formatIssues,
  InvalidOptionsError,
  InvalidReceiptError,
  type OutboundMessage,
  type PublishOptions,
  parseOptions,
  type ReceivedMessage,
  type ReceiveOptions,
  SPECIFICATION_VERSION,
  type Transport,
} from '@facerec/framework';
import {
  assertVisibilityTimeout,
  prepareOutboundMessages,
  type ReceiveLimits,
  type ResolvedReceiveOptions,
  resolveReceiveOptions,
} from '@facerec/framework/internal';
import { z } from 'zod';
import { type Clock, systemClock, type TimerHandle } from './clock.js';
import type { JournalChanges, JournalMessage, QueueJournal } from './journal.js';

const COMPONENT = 'InMemoryQueueTransport';

/**
 * The limits of {@link InMemoryQueueTransport}. They are SQS's on purpose, so that what runs locally also
 * runs on SQS: receive batches of 1–10 (default 10), long polls of 0–20 s (default 20), visibility timeouts
 * of 0–43200 s, messages of up to 256 KiB by default and at most 1 MiB, 1–1000 receives before redrive.
 */
export const IN_MEMORY_QUEUE_LIMITS: Readonly<
  ReceiveLimits & { defaultMaxMessageBytes: number; maxMessageBytes: number; maxReceiveCount: number }
> = Object.freeze({
  maxMessages: 10,
  maxWaitTimeSeconds: 20,
  maxVisibilityTimeoutSeconds: 43_200,
  defaultMaxMessageBytes: 262_144,
  maxMessageBytes: 1_048_576,
  maxReceiveCount: 1000,
});

/** Settings of one queue, as an SQS queue's attributes and redrive policy would give them. */
export interface QueueConfig {
  /** How long a received, unacknowledged message stays hidden before it is delivered again. Default 30. */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Deliveries after which a message goes to {@link QueueConfig.deadLetterQueue} instead of being delivered
   * again (1–1000). Default 5. As in SQS, where it is part of the redrive policy, it has no effect without a
   * dead-letter queue: the message is then redelivered for as long as nobody acknowledges it.
   */
  readonly maxReceiveCount?: number;
  /** Name of the queue that receives messages delivered `maxReceiveCount` times without acknowledgement. */
  readonly deadLetterQueue?: string;
  /**
   * When above 0, a message whose `id` was published to this queue less than this many seconds ago is
   * dropped instead of queued, as SQS FIFO queues drop a repeated deduplication id (0–86400). Default 0: off.
   */
  readonly deduplicationWindowSeconds?: number;
}

/** Options of {@link InMemoryQueueTransport}; all optional. */
export interface InMemoryQueueTransportOptions {
  /** Queues configured up front, by name. Any other queue is created, with `queueDefaults`, on first use. */
  readonly queues?: Readonly<Record<string, QueueConfig>>;
  /** Settings of queues created on first use. A dead-letter queue can only be set per queue. */
  readonly queueDefaults?: Omit<QueueConfig, 'deadLetterQueue'>;
  /**
   * Largest message accepted (body and attributes, see `messageSizeBytes`), 1–1048576. Default 262144
   * (256 KiB).
   */
  readonly maxMessageBytes?: number;
  /** Time source for visibility timeouts and long polls. Default {@link systemClock}; tests use `ManualClock`. */
  readonly clock?: Clock;
  /**
   * Durable storage: the queues are loaded from it at construction, and every change is written to it before
   * the call that made it returns, so a process killed at any moment loses no published message (see
   * `openSqliteQueueJournal`). Messages that were in flight when the journal was last written are visible
   * again at once: the consumers that held them were in the process that is gone. The transport closes the
   * journal when it is closed. Default: none (memory only).
   */
  readonly journal?: QueueJournal;
  /**
   * Told when messages are moved to a dead-letter queue (delivered `maxReceiveCount` times without being
   * acknowledged), after the move: to log it, count it. Default: nothing.
   */
  readonly onDeadLetter?: (moved: DeadLettered) => void;
}

/** Messages moved to a dead-letter queue (see {@link InMemoryQueueTransportOptions.onDeadLetter}). */
export interface DeadLettered {
  readonly queue: string;
  readonly deadLetterQueue: string;
  readonly messages: readonly { readonly id: string; readonly body: string; readonly receiveCount: number }[];
}

/** The defaults of {@link QueueConfig}. */
export const DEFAULT_QUEUE_CONFIG: Readonly<Required<Omit<QueueConfig, 'deadLetterQueue'>>> = Object.freeze({
  visibilityTimeoutSeconds: 30,
  maxReceiveCount: 5,
  deduplicationWindowSeconds: 0,
});

const queueConfigSchema = z
  .object({
    visibilityTimeoutSeconds: z.number().int().min(0).max(IN_MEMORY_QUEUE_LIMITS.maxVisibilityTimeoutSeconds),
    maxReceiveCount: z.number().int().min(1).max(IN_MEMORY_QUEUE_LIMITS.maxReceiveCount),
    deadLetterQueue: z.string().min(1),
    deduplicationWindowSeconds: z.number().int().min(0).max(86_400),
  })
  .partial()
  .strict();

/** An object with these methods (a collaborator passed in, checked by shape). */
const withMethods = <T>(...names: string[]) =>
  z.custom<T>(
    (value) =>
      typeof value === 'object' &&
      value !== null &&
      names.every((key) => typeof (value as Record<string, unknown>)[key] === 'function'),
    `must have ${names.map((n) => `${n}()`).join(', ')}`,
  );

const optionsSchema = z
  .object({
    queues: z.record(z.string().min(1), queueConfigSchema),
    queueDefaults: queueConfigSchema.omit({ deadLetterQueue: true }).strict(),
    maxMessageBytes: z.number().int().min(1).max(IN_MEMORY_QUEUE_LIMITS.maxMessageBytes),
    clock: withMethods<Clock>('now', 'setTimeout', 'clearTimeout'),
    journal: withMethods<QueueJournal>('load', 'commit', 'close'),
    onDeadLetter: z.custom<(moved: DeadLettered) => void>(
      (v) => typeof v === 'function',
      'must be a function',
    ),
  })
  .partial()
  .strict();

interface ResolvedQueueConfig {
  readonly visibilityTimeoutSeconds: number;
  readonly maxReceiveCount: number;
  readonly deadLetterQueue: string | undefined;
  readonly deduplicationWindowSeconds: number;
}

interface StoredMessage {
  readonly id: string;
  readonly body: string;
  readonly attributes: Readonly<Record<string, string>>;
  receiveCount: number;
  /** Clock time it was published; not kept in the journal (a message restored from it has none). */
  readonly sentAt?: number;
  /** Clock time from which the message may be delivered; later than now while it is in flight. */
  visibleAt: number;
  /** Number of the latest delivery; a receipt names the delivery it came from, so older ones go stale. */
  delivery: number;
}

interface Waiter {
  readonly options: ResolvedReceiveOptions;
  readonly deadline: number;
  finish(messages: ReceivedMessage[]): void;
  /** Ends the long poll with an error (the journal refused the receive). */
  fail(error: unknown): void;
}

interface QueueState {
  readonly name: string;
  config: ResolvedQueueConfig;
  /** Keyed by a sequence number taken at enqueue time, so iteration order is arrival order. */
  readonly messages: Map<number, StoredMessage>;
  /** Long polls waiting on this queue, oldest first. */
  readonly waiters: Waiter[];
  timer: TimerHandle | undefined;
  /** Ids published within the deduplication window, to the clock time they are remembered until. */
  readonly published: Map<string, number>;
  /** When `published` is next swept of expired ids (at most once a second: a sweep walks all of them). */
  sweepAt: number;
}

interface DecodedReceipt {
  readonly instance: string;
  readonly queue: string;
  readonly seq: number;
  readonly delivery: number;
}

/**
 * A provider-free, in-process {@link Transport} with SQS's semantics, for local runs and tests:
 *
 * - `receive` returns up to `maxMessages` visible messages and hides each for the visibility timeout; an
 *   unacknowledged message becomes visible again afterwards and is redelivered with `receiveCount` + 1.
 * - With a `deadLetterQueue`, a message already delivered `maxReceiveCount` times is moved there by the next
 *   receive instead of being delivered (its `id` and `receiveCount` are kept, as SQS keeps them).
 * - Long polling waits up to `waitTimeSeconds` and returns as soon as a message is published or becomes
 *   visible again; it honours `signal` (rejecting with its reason) and {@link InMemoryQueueTransport.close}.
 * - Acknowledging with a receipt from an earlier delivery of a message that was received again since is
 *   ignored, as SQS ignores it; a receipt this transport never issued is an {@link InvalidReceiptError}.
 * - Messages are limited in size as SQS limits them (`maxMessageBytes`, default 256 KiB), and receive options
 *   to SQS's ranges: see {@link IN_MEMORY_QUEUE_LIMITS}.
 *
 * Unlike standard SQS it delivers in arrival order and exactly once per receive: tests stay deterministic.
 *
 * @example
 * const clock = new ManualClock();
 * const transport = new InMemoryQueueTransport({
 *   clock,
 *   queues: { jobs: { visibilityTimeoutSeconds: 10, maxReceiveCount: 3, deadLetterQueue: 'jobs-dlq' } },
 * });
 * await transport.publish('jobs', [{ body: '{"frame":1}' }]);
 * const [message] = await transport.receive('jobs', { waitTimeSeconds: 0 });
 * clock.advance(10_000); // not acknowledged: visible again
 */
export class InMemoryQueueTransport implements Transport {
  readonly specificationVersion = SPECIFICATION_VERSION;

  readonly #clock: Clock;
  readonly #maxMessageBytes: number;
  readonly #defaults: ResolvedQueueConfig;
  readonly #configs = new Map<string, ResolvedQueueConfig>();
  readonly #queues = new Map<string, QueueState>();
  // Receipts carry the instance, so one transport's receipts are refused by another.
  readonly #instance = randomUUID();
  readonly #journal: QueueJournal | undefined;
  readonly #onDeadLetter: ((moved: DeadLettered) => void) | undefined;
  #nextSeq = 0;
  #closed = false;

  constructor(options: InMemoryQueueTransportOptions = {}) {
    const settings = parseOptions(optionsSchema, options, COMPONENT);
    this.#clock = settings.clock ?? systemClock;
    this.#onDeadLetter = settings.onDeadLetter;
    this.#maxMessageBytes = settings.maxMessageBytes ?? IN_MEMORY_QUEUE_LIMITS.defaultMaxMessageBytes;
    this.#defaults = { ...DEFAULT_QUEUE_CONFIG, ...settings.queueDefaults, deadLetterQueue: undefined };
    const configs = new Map<string, ResolvedQueueConfig>();
    for (const [name, config] of Object.entries(settings.queues ?? {})) {
      configs.set(name, { ...this.#defaults, ...config });
    }
    assertNoRedriveCycle(configs);
    for (const [name, config] of configs) this.#configs.set(name, config);
    this.#journal = settings.journal;
    if (this.#journal) this.#load(this.#journal);
  }

  /** Restores the queues from the journal; messages in flight then become visible at once. */
  #load(journal: QueueJournal): void {
    const now = this.#clock.now();
    const { messages, deduplication } = journal.load(now);
    for (const m of messages) {
      this.#queue(m.queue).messages.set(m.seq, {
        id: m.id,
        body: m.body,
        attributes: Object.freeze({ ...m.attributes }),
        receiveCount: m.receiveCount,
        visibleAt: Math.min(m.visibleAt, now),
        delivery: m.delivery,
      });
      this.#nextSeq = Math.max(this.#nextSeq, m.seq + 1);
    }
    for (const { queue, id, until } of deduplication) {
      if (until > now) this.#queue(queue).published.set(id, until);
    }
  }

  /** Writes `changes` to the journal, if any, before the caller applies them in memory. */
  #commit(changes: JournalChanges): void {
    this.#journal?.commit(changes, this.#clock.now());
  }

  /**
   * Creates a queue with `config`, or changes the settings of an existing one (its messages are kept; the new
   * visibility timeout applies from their next delivery).
   *
   * @throws {InvalidOptionsError} a bad setting, or a dead-letter queue that leads back to this queue.
   */
  configureQueue(name: string, config: QueueConfig = {}): void {
    assertQueueName(name);
    const parsed = queueConfigSchema.safeParse(config);
    if (!parsed.success) {
      throw new InvalidOptionsError(COMPONENT, `queue "${name}": ${formatIssues(parsed.error)}`, {
        cause: parsed.error,
      });
    }
    const resolved: ResolvedQueueConfig = { ...this.#defaults, ...parsed.data };
    const configs = new Map(this.#configs);
    configs.set(name, resolved);
    assertNoRedriveCycle(configs, [name]);
    this.#configs.set(name, resolved);
    const state = this.#queues.get(name);
    if (state) state.config = resolved;
    else this.#queue(name);
  }

  async publish(
    queue: string,
    messages: readonly OutboundMessage[],
    options: PublishOptions = {},
  ): Promise<void> {
    this.#assertOpen();
    assertQueueName(queue);
    const prepared = prepareOutboundMessages(messages, this.#maxMessageBytes);
    if (prepared.length === 0) return;
    // A publish here takes no time, so only a signal aborted before it stops it (rejecting with its reason).
    options.signal?.throwIfAborted();
    const state = this.#queue(queue);
    const now = this.#clock.now();
    const windowMs = state.config.deduplicationWindowSeconds * 1000;
    // Swept once a second, not per publish: an hour's window at 100 answers a second holds 360,000 ids, whose
    // walk takes milliseconds. An id past its time but not yet swept counts as gone.
    if (windowMs > 0 && now >= state.sweepAt) {
      for (const [id, until] of state.published) if (until <= now) state.published.delete(id);
      state.sweepAt = now + 1000;
    }
    const added: [number, StoredMessage][] = [];
    for (const message of prepared) {
      if (windowMs > 0 && (state.published.get(message.id) ?? now) > now) continue;
      added.push([
        this.#nextSeq++,
        {
          id: message.id,
          body: message.body,
          attributes: Object.freeze({ ...message.attributes }),
          receiveCount: 0,
          sentAt: now,
          visibleAt: now,
          delivery: 0,
        },
      ]);
    }
    const until = now + windowMs;
    this.#commit({
      put: added.map(([seq, message]) => journalEntry(queue, seq, message)),
      ...(windowMs > 0 && { deduplication: added.map(([, { id }]) => ({ queue, id, until })) }),
    });
    for (const [seq, message] of added) {
      state.messages.set(seq, message);
      if (windowMs > 0) state.published.set(message.id, until);
    }
    this.#wake(state);
  }

  async receive(queue: string, options?: ReceiveOptions): Promise<ReceivedMessage[]> {
    const resolved = resolveReceiveOptions(options, COMPONENT, IN_MEMORY_QUEUE_LIMITS);
    this.#assertOpen();
    assertQueueName(queue);
    resolved.signal?.throwIfAborted();
    const state = this.#queue(queue);
    const ready = this.#collect(state, resolved);
    if (ready.length > 0 || resolved.waitTimeSeconds === 0) return ready;

    return new Promise<ReceivedMessage[]>((resolve, reject) => {
      const signal = resolved.signal;
      const settle = (waiter: Waiter): boolean => {
        const index = state.waiters.indexOf(waiter);
        if (index < 0) return false;
        state.waiters.splice(index, 1);
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      const waiter: Waiter = {
        options: resolved,
        deadline: this.#clock.now() + resolved.waitTimeSeconds * 1000,
        finish: (messages) => {
          if (settle(waiter)) resolve(messages);
        },
        fail: (error) => {
          if (settle(waiter)) reject(error);
        },
      };
      const onAbort = () => {
        if (!settle(waiter)) return;
        this.#schedule(state);
        reject(signal?.reason);
      };
      state.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#schedule(state);
    });
  }

  /**
   * Deletes the delivered messages. A receipt of a message already deleted, moved to its dead-letter queue or
   * received again since is ignored, as in SQS. Every receipt is checked before anything is deleted.
   *
   * @throws {InvalidReceiptError} a receipt not issued by this transport for this queue.
   */
  async acknowledge(queue: string, messages: readonly Pick<ReceivedMessage, 'receipt'>[]): Promise<void> {
    assertQueueName(queue);
    const decoded = messages.map(({ receipt }) => this.#decodeReceipt(queue, receipt));
    const state = this.#queues.get(queue);
    if (!state) return;
    const deleted = decoded.flatMap(({ seq, delivery }) =>
      state.messages.get(seq)?.delivery === delivery ? [seq] : [],
    );
    if (deleted.length === 0) return;
    this.#commit({ delete: deleted });
    for (const seq of deleted) state.messages.delete(seq);
    this.#schedule(state);
  }

  /**
   * Changes how long a delivered message stays hidden, counted from now (SQS `ChangeMessageVisibility`):
   * 0 makes it visible at once, a longer timeout extends the time to process it.
   *
   * @throws {InvalidReceiptError} a receipt not from this queue, stale (the message was deleted or received
   *   again), or whose visibility timeout has already expired.
   */
  async changeVisibility(
    queue: string,
    message: Pick<ReceivedMessage, 'receipt'>,
    visibilityTimeoutSeconds: number,
  ): Promise<void> {
    assertQueueName(queue);
    assertVisibilityTimeout(
      visibilityTimeoutSeconds,
      COMPONENT,
      IN_MEMORY_QUEUE_LIMITS.maxVisibilityTimeoutSeconds,
    );
    const { seq, delivery } = this.#decodeReceipt(queue, message.receipt);
    const state = this.#queues.get(queue);
    const stored = state?.messages.get(seq);
    if (!state || !stored || stored.delivery !== delivery) {
      throw new InvalidReceiptError(
        queue,
        message.receipt,
        'the message was deleted or received again since',
      );
    }
    const now = this.#clock.now();
    if (stored.visibleAt <= now) {
      throw new InvalidReceiptError(
        queue,
        message.receipt,
        'the message is not in flight (visibility expired)',
      );
    }
    const visibleAt = now + visibilityTimeoutSeconds * 1000;
    this.#commit({ put: [journalEntry(queue, seq, { ...stored, visibleAt })] });
    stored.visibleAt = visibleAt;
    if (visibilityTimeoutSeconds === 0) this.#wake(state);
    else this.#schedule(state);
  }

  /** Messages waiting to be received (visible now); SQS's `ApproximateNumberOfMessages`. */
  depth(queue: string): number {
    const now = this.#clock.now();
    let count = 0;
    for (const message of this.#queues.get(queue)?.messages.values() ?? []) {
      if (message.visibleAt <= now) count++;
    }
    return count;
  }

  /**
   * The bodies of a queue's messages, visible or in flight, in arrival order, without receiving them: what a
   * transport restored from its journal holds (a runtime restarted on it learns which work was under way).
   */
  bodies(queue: string): string[] {
    return [...(this.#queues.get(queue)?.messages.values() ?? [])].map((m) => m.body);
  }

  /** Messages received and neither acknowledged nor visible again; SQS's `ApproximateNumberOfMessagesNotVisible`. */
  inFlight(queue: string): number {
    const now = this.#clock.now();
    let count = 0;
    for (const message of this.#queues.get(queue)?.messages.values() ?? []) {
      if (message.visibleAt > now) count++;
    }
    return count;
  }

  /**
   * Ends every pending long poll with `[]` and refuses further `publish` and `receive` calls with
   * `DisposedError`. `acknowledge` and `changeVisibility` keep working, so in-flight work can finish cleanly.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of this.#queues.values()) {
      if (state.timer !== undefined) this.#clock.clearTimeout(state.timer);
      state.timer = undefined;
      for (const waiter of [...state.waiters]) waiter.finish([]);
    }
    this.#journal?.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new DisposedError(COMPONENT);
  }

  #queue(name: string): QueueState {
    let state = this.#queues.get(name);
    if (!state) {
      state = {
        name,
        config: this.#configs.get(name) ?? this.#defaults,
        messages: new Map(),
        waiters: [],
        timer: undefined,
        published: new Map(),
        sweepAt: 0,
      };
      this.#queues.set(name, state);
    }
    return state;
  }

  /**
   * Takes up to `maxMessages` visible messages for one receive, redriving over-received ones first. The
   * changes are written to the journal before any is applied, so a journal that refuses them changes nothing.
   */
  #collect(state: QueueState, options: ResolvedReceiveOptions): ReceivedMessage[] {
    const now = this.#clock.now();
    const { deadLetterQueue, maxReceiveCount } = state.config;
    const visibilityMs = (options.visibilityTimeoutSeconds ?? state.config.visibilityTimeoutSeconds) * 1000;
    const delivered: [number, StoredMessage][] = [];
    const redriven: [number, StoredMessage, number][] = [];
    for (const [seq, message] of state.messages) {
      if (delivered.length >= options.maxMessages) break;
      if (message.visibleAt > now) continue;
      if (deadLetterQueue !== undefined && message.receiveCount >= maxReceiveCount) {
        redriven.push([seq, message, this.#nextSeq++]);
        continue;
      }
      delivered.push([seq, message]);
    }
    if (delivered.length === 0 && redriven.length === 0) return [];
    const after = (message: StoredMessage): StoredMessage => ({
      ...message,
      receiveCount: message.receiveCount + 1,
      delivery: message.delivery + 1,
      visibleAt: now + visibilityMs,
    });
    this.#commit({
      put: [
        ...delivered.map(([seq, message]) => journalEntry(state.name, seq, after(message))),
        ...redriven.map(([, message, to]) =>
          journalEntry(deadLetterQueue!, to, { ...message, visibleAt: now }),
        ),
      ],
      delete: redriven.map(([seq]) => seq),
    });
    const received: ReceivedMessage[] = [];
    for (const [seq, message] of delivered) {
      Object.assign(message, after(message));
      received.push({
        id: message.id,
        body: message.body,
        receipt: this.#encodeReceipt(state.name, seq, message.delivery),
        receiveCount: message.receiveCount,
        attributes: message.attributes,
        ...(message.sentAt === undefined ? {} : { sentAt: message.sentAt }),
      });
    }
    if (redriven.length) {
      const target = this.#queue(deadLetterQueue!);
      for (const [seq, message, to] of redriven) {
        state.messages.delete(seq);
        message.visibleAt = now;
        target.messages.set(to, message);
      }
      // Redrive chains are acyclic (checked at configuration), so waking the dead-letter queue terminates.
      this.#wake(target);
      this.#onDeadLetter?.({
        queue: state.name,
        deadLetterQueue: deadLetterQueue!,
        messages: redriven.map(([, m]) => ({ id: m.id, body: m.body, receiveCount: m.receiveCount })),
      });
    }
    return received;
  }

  /** Hands visible messages to waiting long polls, oldest first, then re-arms the queue's timer. */
  #wake(state: QueueState): void {
    this.#serve(state);
    this.#schedule(state);
  }

  #serve(state: QueueState): void {
    for (const waiter of [...state.waiters]) {
      let messages: ReceivedMessage[];
      try {
        messages = this.#collect(state, waiter.options);
      } catch (error) {
        // The journal refused the receive (disk full, I/O error): the long poll fails, nothing was taken.
        waiter.fail(error);
        continue;
      }
      // Nothing for the oldest waiter means nothing visible is left for the younger ones either.
      if (messages.length === 0) break;
      waiter.finish(messages);
    }
  }

  /**
   * One timer per queue, only while long polls wait: it fires at the earliest of their deadlines and of the
   * moments in-flight messages become visible again. It cannot spin: after `#serve`, either no poll waits or
   * no message is visible (each is delivered or moved to the dead-letter queue, or the polls failed).
   */
  #schedule(state: QueueState): void {
    if (state.timer !== undefined) this.#clock.clearTimeout(state.timer);
    state.timer = undefined;
    if (state.waiters.length === 0 || this.#closed) return;
    const now = this.#clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const waiter of state.waiters) next = Math.min(next, waiter.deadline);
    // A message visible already counts too (the timer then fires at once and serves it): the clock can pass its
    // visibleAt between the caller's look for messages and this read, and it would otherwise wait for the
    // earliest long poll's deadline, up to 20 s.
    for (const message of state.messages.values()) next = Math.min(next, message.visibleAt);
    state.timer = this.#clock.setTimeout(() => this.#onTimer(state), Math.max(0, next - now));
  }

  #onTimer(state: QueueState): void {
    state.timer = undefined;
    this.#serve(state);
    const now = this.#clock.now();
    for (const waiter of [...state.waiters]) if (waiter.deadline <= now) waiter.finish([]);
    this.#schedule(state);
  }

  #encodeReceipt(queue: string, seq: number, delivery: number): string {
    return Buffer.from(JSON.stringify([this.#instance, queue, seq, delivery]), 'utf8').toString('base64url');
  }

  #decodeReceipt(queue: string, receipt: string): DecodedReceipt {
    let decoded: DecodedReceipt | undefined;
    try {
      const value: unknown = JSON.parse(Buffer.from(String(receipt), 'base64url').toString('utf8'));
      if (
        Array.isArray(value) &&
        value.length === 4 &&
        typeof value[0] === 'string' &&
        typeof value[1] === 'string' &&
        Number.isInteger(value[2]) &&
        Number.isInteger(value[3])
      ) {
        decoded = { instance: value[0], queue: value[1], seq: value[2], delivery: value[3] };
      }
    } catch {
      decoded = undefined;
    }
    if (!decoded || decoded.instance !== this.#instance) {
      throw new InvalidReceiptError(queue, receipt, 'not a receipt issued by this transport');
    }
    if (decoded.queue !== queue) {
      throw new InvalidReceiptError(queue, receipt, `issued for queue "${decoded.queue}"`);
    }
    return decoded;
  }
}

function journalEntry(queue: string, seq: number, message: StoredMessage): JournalMessage {
  return {
    seq,
    queue,
    id: message.id,
    body: message.body,
    attributes: message.attributes,
    receiveCount: message.receiveCount,
    visibleAt: message.visibleAt,
    delivery: message.delivery,
  };
}

function assertQueueName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidOptionsError(COMPONENT, 'queue name must be a non-empty string');
  }
}

/** A dead-letter queue whose own redrive leads back would move messages round forever. */
function assertNoRedriveCycle(
  configs: ReadonlyMap<string, ResolvedQueueConfig>,
  starts: Iterable<string> = configs.keys(),
): void {
  for (const start of starts) {
    const path = [start];
    for (let next = configs.get(start)?.deadLetterQueue; next !== undefined; ) {
      if (path.includes(next)) {
        throw new InvalidOptionsError(
          COMPONENT,
          `dead-letter queues form a cycle: ${[...path, next].map((name) => `"${name}"`).join(' → ')}`,
        );
      }
      path.push(next);
      next = configs.get(next)?.deadLetterQueue;
    }
  }
}
