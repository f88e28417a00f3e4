/**
 * Remembers which faces have been answered, so a redelivered SQS record does not produce a second answer.
 * Keys are `request_id:face_index`.
 */
export interface IdempotencyStore {
  /** Claims `key`; false when it is already answered or being answered. */
  claim(key: string): Promise<boolean>;
  /** Marks a claimed key answered. */
  complete(key: string): Promise<void>;
  /** Gives a claim up (the answer could not be sent), so a redelivery can try again. */
  release(key: string): Promise<void>;
}

/**
 * An in-process {@link IdempotencyStore} with a time-to-live and a size bound. Within one process (the local
 * runtime, or one Lambda container) it suppresses every duplicate; across Lambda containers a shared store
 * (e.g. Powertools idempotency on DynamoDB) is needed for the same guarantee — the response messages carry
 * `request_id` and `face_index`, so clients can also drop duplicates themselves.
 */
export class InMemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, { state: 'pending' | 'done'; expires: number }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: { ttlMs?: number; maxEntries?: number; now?: () => number } = {}) {
    this.#ttlMs = options.ttlMs ?? 60 * 60 * 1000;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  async claim(key: string): Promise<boolean> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry && entry.expires > now) return false;
    this.#entries.delete(key);
    // Map iteration order is insertion order: evict the oldest when full.
    while (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { state: 'pending', expires: now + this.#ttlMs });
    return true;
  }

  async complete(key: string): Promise<void> {
    this.#entries.set(key, { state: 'done', expires: this.#now() + this.#ttlMs });
  }

  async release(key: string): Promise<void> {
    if (this.#entries.get(key)?.state === 'pending') this.#entries.delete(key);
  }
}
