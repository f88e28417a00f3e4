import { detectionRequestSchema } from '../messages.js';

interface InFlight {
  readonly since: number;
  /** Answers the frame will get (its faces, or 1 for "no face"); unknown until detection accepted it. */
  expected: number | undefined;
  /** Answers seen, by `frame_id:face_index`, so a duplicate is not counted twice. */
  readonly answered: Set<string>;
}

/** Options of {@link RequestsInFlight}. */
export interface RequestsInFlightOptions {
  /**
   * A request id is given up after this long even if some of its answers never came (a face in the dead-letter
   * queue), so the id can be used again. Default 10 minutes (as long as the mailbox holds answers).
   */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

/**
 * The local runtime's request ids in flight: from the moment a frame is taken for detection until every one of
 * its answers reached the mailbox. A second frame with an id in flight is refused (409) rather than mixed
 * with the first under one id. (On Lambda each frame gets its own `frame_id` instead; see the detection
 * handler.)
 */
export class RequestsInFlight {
  readonly #entries = new Map<string, InFlight>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: RequestsInFlightOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 10 * 60 * 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Request ids in flight. */
  get size(): number {
    return this.#entries.size;
  }

  /** Takes `requestId` for a frame; false when a frame with that id is still in flight. */
  begin(requestId: string): boolean {
    const oldest = this.#now() - this.#ttlMs;
    // Insertion order is age order: expired entries are at the front.
    for (const [id, entry] of this.#entries) {
      if (entry.since >= oldest) break;
      this.#entries.delete(id);
    }
    if (this.#entries.has(requestId)) return false;
    this.#entries.set(requestId, { since: this.#now(), expected: undefined, answered: new Set() });
    return true;
  }

  /**
   * Detection answered the frame: accepted (200 `{ faces }`), it awaits one answer per face (or its one
   * "no face" answer), some of which may have arrived already; refused, nothing of it was queued and the id is
   * free again.
   */
  detected(requestId: string, result: { readonly statusCode: number; readonly body: string }): void {
    const entry = this.#entries.get(requestId);
    if (!entry) return;
    const faces = result.statusCode === 200 ? facesOf(result.body) : undefined;
    if (faces === undefined) {
      this.#entries.delete(requestId);
      return;
    }
    entry.expected = Math.max(faces, 1);
    this.#settle(requestId, entry);
  }

  /** An answer (a response message) reached the mailbox. */
  answered(answer: {
    readonly request_id?: unknown;
    readonly frame_id?: unknown;
    readonly face_index?: unknown;
  }): void {
    const entry = typeof answer.request_id === 'string' ? this.#entries.get(answer.request_id) : undefined;
    if (!entry) return;
    entry.answered.add(`${String(answer.frame_id)}:${String(answer.face_index)}`);
    this.#settle(answer.request_id as string, entry);
  }

  #settle(requestId: string, entry: InFlight): void {
    if (entry.expected !== undefined && entry.answered.size >= entry.expected)
      this.#entries.delete(requestId);
  }
}

/**
 * The `request_id` of a detection request body, when it has a well-formed one (otherwise the detection handler
 * refuses the body, and there is nothing to reserve).
 */
export function requestIdOf(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { request_id?: unknown } | null)?.request_id;
    return detectionRequestSchema.shape.request_id.safeParse(id).success ? (id as string) : undefined;
  } catch {
    return undefined;
  }
}

function facesOf(body: string): number | undefined {
  try {
    const faces = (JSON.parse(body) as { faces?: unknown } | null)?.faces;
    return typeof faces === 'number' && Number.isInteger(faces) && faces >= 0 ? faces : undefined;
  } catch {
    return undefined;
  }
}
