import { FacerecError } from '@facerec/framework';
import type { DynamoDbIdempotencyStoreOptions } from './idempotency-dynamodb.js';

/**
 * The idempotency store cannot be used: its table does not exist, access is denied, or it cannot be reached.
 * The message names the table and what to do (code `IDEMPOTENCY_STORE_UNAVAILABLE`).
 */
export class IdempotencyStoreUnavailableError extends FacerecError {
  static override readonly errorName: string = 'IdempotencyStoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('IDEMPOTENCY_STORE_UNAVAILABLE', message, options);
  }
}

/**
 * What {@link IdempotencyStore.claim} found for a key:
 *
 * - `claimed`: nobody answered it, or the last attempt failed or expired; this attempt now holds it (`token`).
 * - `in-progress`: another attempt holds it and has not expired. The record must be retried later (a batch
 *   item failure), never acknowledged: that attempt may still fail.
 * - `completed`: answered already (`answer`: what was sent, when the store was given it; the recognition handler
 *   gives none); acknowledge without a second answer.
 */
export type IdempotencyClaim =
  | { readonly status: 'claimed'; readonly token: string }
  | { readonly status: 'in-progress'; readonly until: number }
  | { readonly status: 'completed'; readonly answer: string | undefined };

/**
 * Remembers which faces are being answered or were answered, so that a redelivered queue record neither
 * produces a second answer nor gets lost: three states per key, as Powertools idempotency has them — in
 * progress (with an expiry, after which the attempt counts as dead), completed (with the answer), failed
 * (processed again on the next delivery). Keys are `request_id:frame_id:face_index`.
 *
 * `complete` and `fail` act only on the caller's own claim (its `token`): an attempt whose claim expired and
 * was taken over by another cannot overwrite that one.
 */
export interface IdempotencyStore {
  /**
   * Claims `key` for one attempt that ends by `inProgressUntil` (epoch milliseconds), unless it is in progress
   * elsewhere or completed.
   */
  claim(key: string, options: { readonly inProgressUntil: number }): Promise<IdempotencyClaim>;
  /**
   * Marks the claim answered, keeping `answer` when given. The recognition handler gives none: it never sends
   * an answer twice, and an answer names a person (personal data the store would otherwise keep for its whole
   * time-to-live). False when the claim was no longer this attempt's (it expired and another attempt took the
   * key): that attempt may answer too.
   */
  complete(key: string, token: string, answer?: string): Promise<boolean>;
  /** Marks the claim failed (the answer could not be made or sent), so the next delivery processes it again. */
  fail(key: string, token: string): Promise<void>;
}

/** Options of {@link InMemoryIdempotencyStore}. */
export interface InMemoryIdempotencyStoreOptions {
  /** How long a completed or failed key is remembered (then dropped, at the next claim). Default 1 hour. */
  readonly ttlMs?: number;
  /** At most this many keys are held; the oldest go first. Default 100,000. */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry {
  status: 'in-progress' | 'completed' | 'failed';
  token: string;
  inProgressUntil: number;
  expires: number;
  answer?: string;
}

/**
 * An in-process {@link IdempotencyStore} with a time-to-live and a size bound. Within one process (the local
 * runtime, or one Lambda container) it suppresses every duplicate; across Lambda containers use the shared
 * DynamoDB store (`FACEREC_IDEMPOTENCY_TABLE`, {@link createDynamoDbIdempotencyStore}).
 */
export class InMemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /**
   * Claim tokens: a counter, which is unique within this store, the only place they are checked. (A
   * `randomUUID()` string is built of about 20 concatenated pieces in V8, 0.6 KB per held key: over half of the
   * store's memory in a heap snapshot of `facerec serve`.)
   */
  #claims = 0;

  constructor(options: InMemoryIdempotencyStoreOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 60 * 60 * 1000;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  async claim(key: string, options: { readonly inProgressUntil: number }): Promise<IdempotencyClaim> {
    const now = this.#now();
    const entry = this.#entries.get(key);
    if (entry && entry.expires > now) {
      if (entry.status === 'completed') return { status: 'completed', answer: entry.answer };
      if (entry.status === 'in-progress' && entry.inProgressUntil > now) {
        return { status: 'in-progress', until: entry.inProgressUntil };
      }
    }
    // Absent, failed, or an attempt that outlived its expiry: this one takes the key.
    this.#entries.delete(key);
    // Map iteration order is insertion order, which is about expiry order (every key lives ttlMs from its
    // claim or answer): expired keys are dropped from the front, so an answer (an identity's name) is not held
    // past its time-to-live, and memory follows the traffic of the last ttlMs; the oldest go first when full.
    for (const [oldest, held] of this.#entries) {
      if (held.expires > now && this.#entries.size < this.#maxEntries) break;
      this.#entries.delete(oldest);
    }
    const token = String(++this.#claims);
    this.#entries.set(key, {
      status: 'in-progress',
      token,
      inProgressUntil: options.inProgressUntil,
      expires: Math.max(now + this.#ttlMs, options.inProgressUntil),
    });
    return { status: 'claimed', token };
  }

  async complete(key: string, token: string, answer?: string): Promise<boolean> {
    const entry = this.#entries.get(key);
    if (entry?.token !== token) return false;
    Object.assign(entry, {
      status: 'completed',
      expires: this.#now() + this.#ttlMs,
      ...(answer === undefined ? {} : { answer }),
    });
    return true;
  }

  async fail(key: string, token: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry?.token === token && entry.status === 'in-progress') entry.status = 'failed';
  }

  /** The keys held (expired ones included until the next claim drops them). */
  get size(): number {
    return this.#entries.size;
  }
}

/**
 * The {@link IdempotencyStore} shared by every Lambda container: DynamoDB conditional writes on a table with
 * partition key `id` (string) and TTL on `expiration` (see `DynamoDbIdempotencyStore`). The AWS SDK's
 * DynamoDB client loads only when this is called, so processes without a table never load it.
 *
 * @example
 * const idempotency = await createDynamoDbIdempotencyStore({ table: 'facerec-idempotency' });
 */
export async function createDynamoDbIdempotencyStore(
  options: DynamoDbIdempotencyStoreOptions,
): Promise<IdempotencyStore & { check(): Promise<void>; close(): void }> {
  const { DynamoDbIdempotencyStore } = await import('./idempotency-dynamodb.js');
  return new DynamoDbIdempotencyStore(options);
}
