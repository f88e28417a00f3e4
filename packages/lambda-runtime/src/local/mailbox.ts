/** Which answers a client takes: those whose request id starts with `prefix`, or is `requestId` exactly. */
export type MailboxMatch = { readonly prefix: string } | { readonly requestId: string };

const matches = (match: MailboxMatch, requestId: string): boolean =>
  'prefix' in match ? requestId.startsWith(match.prefix) : requestId === match.requestId;

/** One answer waiting for its client. */
interface Entry {
  readonly requestId: string;
  readonly body: unknown;
  readonly at: number;
  reserved: boolean;
}

/** Options of {@link ResponseMailbox}. */
export interface ResponseMailboxOptions {
  /** Answers nobody collects are dropped after this long. Default 10 minutes. */
  readonly ttlMs?: number;
  /** At most this many answers are held; the oldest go first. Default 100,000. */
  readonly maxEntries?: number;
  readonly now?: () => number;
  /** Called with an answer's body when it leaves the box (delivered, or dropped as too old). */
  readonly onRemoved?: (body: unknown) => void;
  /** Called once per clean-up that dropped answers nobody collected: how many, too old or for room. */
  readonly onDropped?: (dropped: { readonly expired: number; readonly full: number }) => void;
}

/**
 * The local runtime's answers, held by request id so that each client collects its own: a client asks for the
 * answers whose `request_id` starts with its prefix (the workload client's run id), or for one request id
 * exactly, and an answer is removed only once it was written to that client. A queue read by several clients cannot do that (each would take
 * the others' answers), which is why the runtime drains the response queue into this box.
 */
export class ResponseMailbox {
  readonly #entries = new Set<Entry>();
  readonly #waiters = new Set<{ match: MailboxMatch; wake: () => void }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #onRemoved: (body: unknown) => void;
  readonly #onDropped: ResponseMailboxOptions['onDropped'];

  constructor(options: ResponseMailboxOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 10 * 60 * 1000;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
    this.#onRemoved = options.onRemoved ?? (() => {});
    this.#onDropped = options.onDropped;
  }

  /**
   * Answers held (delivered ones excluded). Those past their time are dropped first, so that an idle server's
   * figures (`/health`, `/metrics`) do not count them, nor miss them as dropped.
   */
  get size(): number {
    this.#evict(false);
    return this.#entries.size;
  }

  /** Holds an answer and wakes the clients waiting for it. */
  add(requestId: string, body: unknown): void {
    this.#evict(true);
    this.#entries.add({ requestId, body, at: this.#now(), reserved: false });
    for (const waiter of this.#waiters) if (matches(waiter.match, requestId)) waiter.wake();
  }

  /**
   * Up to `max` answers `match` takes that nobody else is sending, reserved for this caller: `commit` them once
   * written, `release` them if the write failed. Waits up to `waitMs` when there are none yet.
   */
  async take(match: MailboxMatch, max: number, waitMs: number, signal: AbortSignal): Promise<Entry[]> {
    let found = this.#pick(match, max);
    // Aborted already (a poll that came in while the server was stopping): no wait, whose timer kept the
    // stopped process alive for the poll's whole `wait`, since an abort that has happened fires no event.
    if (found.length || waitMs <= 0 || signal.aborted) return found;
    await new Promise<void>((resolve) => {
      const waiter = { match, wake: () => done() };
      const timer = setTimeout(() => done(), waitMs);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(waiter);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.add(waiter);
    });
    found = signal.aborted ? [] : this.#pick(match, max);
    return found;
  }

  /** Removes answers that were delivered. */
  commit(entries: readonly Entry[]): void {
    for (const entry of entries) if (this.#entries.delete(entry)) this.#onRemoved(entry.body);
  }

  /** Makes answers that could not be delivered available again. */
  release(entries: readonly Entry[]): void {
    for (const entry of entries) entry.reserved = false;
    for (const entry of entries)
      for (const waiter of this.#waiters) if (matches(waiter.match, entry.requestId)) waiter.wake();
  }

  #pick(match: MailboxMatch, max: number): Entry[] {
    // An answer past its time is dropped (and counted), not delivered, even when nothing else came to drop it.
    this.#evict(false);
    const found: Entry[] = [];
    for (const entry of this.#entries) {
      if (found.length >= max) break;
      if (entry.reserved || !matches(match, entry.requestId)) continue;
      entry.reserved = true;
      found.push(entry);
    }
    return found;
  }

  /** Drops the answers past their time and, to make room for one more, the oldest beyond the size limit. */
  #evict(makeRoom: boolean): void {
    const oldest = this.#now() - this.#ttlMs;
    const dropped = { expired: 0, full: 0 };
    // Insertion order is arrival order: the oldest come first.
    for (const entry of this.#entries) {
      if (entry.at >= oldest && (!makeRoom || this.#entries.size < this.#maxEntries)) break;
      if (!entry.reserved && this.#entries.delete(entry)) {
        dropped[entry.at < oldest ? 'expired' : 'full']++;
        this.#onRemoved(entry.body);
      }
    }
    if (dropped.expired + dropped.full > 0) this.#onDropped?.(dropped);
  }
}
