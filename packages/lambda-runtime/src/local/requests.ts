import { imageSize } from 'image-size';
import { detectionRequestSchema, requestJsonIssue } from '../messages.js';

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
  /** Called when a frame's last answer reached the mailbox, with the milliseconds since it was taken. */
  readonly onAnswered?: (ms: number) => void;
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
  readonly #onAnswered: ((ms: number) => void) | undefined;

  constructor(options: RequestsInFlightOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 10 * 60 * 1000;
    this.#now = options.now ?? Date.now;
    this.#onAnswered = options.onAnswered;
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
    if (entry.expected !== undefined && entry.answered.size >= entry.expected) {
      this.#entries.delete(requestId);
      this.#onAnswered?.(this.#now() - entry.since);
    }
  }
}

/** What the local runtime reads from a detection request body before handing it to the detection handler. */
export interface FrameRequestFields {
  /** Its `request_id`, when well-formed (otherwise the handler refuses the body: nothing to reserve). */
  readonly requestId: string | undefined;
  /**
   * Pixels of its image, from the header (`width × height`); 0 when `content` is not a string (the handler
   * refuses it before decoding); `unreadable` when no header could be read from it.
   */
  readonly pixels: number;
}

/** Base64 characters decoded first to find an image header: 48 KiB of image, past EXIF and ICC segments. */
const HEADER_BASE64_CHARS = 64 * 1024;

/**
 * The `request_id` and image size of a detection request body. The size comes from the image header, read by
 * `image-size` from the start of the base64 content (the whole of it only when the header lies further in);
 * a header it cannot read counts as `unreadable` pixels (the decoder's limit, the most a frame can cost).
 */
export function frameRequestFields(body: string, unreadable: number): FrameRequestFields {
  const parsed = shallowJson(body) as { request_id?: unknown; content?: unknown } | undefined;
  const id = parsed?.request_id;
  const requestId = detectionRequestSchema.shape.request_id.safeParse(id).success
    ? (id as string)
    : undefined;
  return { requestId, pixels: imagePixels(parsed?.content, unreadable) };
}

/**
 * A request body's JSON value, or undefined when it is not JSON or nests too deep to parse cheaply (the
 * handler that follows refuses it without parsing either).
 */
function shallowJson(body: string): unknown {
  if (requestJsonIssue(body)) return undefined;
  try {
    return JSON.parse(body) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Pixels of a base64 image, from its header (read by `image-size` from the start of the base64, the whole of it
 * only when the header lies further in): 0 when it is not a non-empty string (refused before decoding),
 * `unreadable` when no header could be read from it.
 */
function imagePixels(base64: unknown, unreadable: number): number {
  if (typeof base64 !== 'string' || base64.length === 0) return 0;
  const size = (text: string) => {
    try {
      const { width, height } = imageSize(Buffer.from(text, 'base64'));
      return width > 0 && height > 0 ? width * height : undefined;
    } catch {
      return undefined;
    }
  };
  return (
    size(base64.slice(0, HEADER_BASE64_CHARS)) ??
    (base64.length > HEADER_BASE64_CHARS ? size(base64) : undefined) ??
    unreadable
  );
}

function facesOf(body: string): number | undefined {
  try {
    const faces = (JSON.parse(body) as { faces?: unknown } | null)?.faces;
    return typeof faces === 'number' && Number.isInteger(faces) && faces >= 0 ? faces : undefined;
  } catch {
    return undefined;
  }
}
