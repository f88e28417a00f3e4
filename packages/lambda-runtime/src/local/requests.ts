import { readImageSize } from '@facerec/framework/internal';
import { detectionRequestSchema, requestJsonIssue } from '../messages.js';
import type { MailboxMatch } from './mailbox.js';

/** The fields of an answer that say which frame and face it is for. */
interface AnswerFields {
  readonly request_id?: unknown;
  readonly frame_id?: unknown;
  readonly face_index?: unknown;
}

interface InFlight {
  readonly since: number;
  /** Answers the frame will get (its faces, or 1 for "no face"); unknown until detection accepted it. */
  expected: number | undefined;
  /** Answers seen, by `frame_id:face_index`, so a duplicate is not counted twice. */
  readonly answered: Set<string>;
  /**
   * For a frame restored from a queue file: its `frame_id`, and the faces and answers of it the file held (by
   * `frame_id:face_index`), which count once collected, not once made: its client, cut off by the stop, may
   * resend it before it could collect them (the restarted server makes them while it starts). Answers
   * collected before the stop are not held, and not waited for.
   */
  readonly restored?: { readonly frame: string; readonly held: Set<string> };
}

/** A face's or an answer's key in `InFlight.answered`. */
const answerKey = (answer: AnswerFields) => `${String(answer.frame_id)}:${String(answer.face_index)}`;

/**
 * How long a restored frame is kept in flight at most: a client resends a frame cut off by a stop within
 * about a minute (30 s of reconnecting, then backoffs of at most 5 s), and a face of it dead-lettered, or
 * answered before the stop and deduplicated since, would otherwise block its request id for the full TTL.
 */
const RESTORED_TTL_MS = 2 * 60 * 1000;

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
    const now = this.#now();
    // Insertion order is expiry order (restored entries, with their shorter TTL, come first): expired entries
    // are at the front.
    for (const [id, entry] of this.#entries) {
      if (entry.since + (entry.restored ? RESTORED_TTL_MS : this.#ttlMs) > now) break;
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

  /**
   * A face or an answer a restarted runtime found in its queue file: its frame is in flight, as it was before
   * the restart, until the answers of what the file held are collected ({@link collected}) or at most 2
   * minutes, so a client's resend of the frame (its connection cut by the stop) is answered 409 rather than
   * detected a second time. Give the request queue's faces first: a request id's latest frame is the one
   * still being recognised; what the file holds of an earlier frame under the same id is left out.
   */
  restored(message: AnswerFields & { readonly face_count?: unknown }): void {
    const { request_id: id, frame_id: frame } = message;
    if (typeof id !== 'string' || typeof frame !== 'string') return;
    let entry = this.#entries.get(id);
    if (!entry) {
      entry = { since: this.#now(), expected: 0, answered: new Set(), restored: { frame, held: new Set() } };
      this.#entries.set(id, entry);
    }
    if (entry.restored?.frame !== frame) return;
    entry.restored.held.add(answerKey(message));
    entry.expected = entry.restored.held.size;
  }

  /** An answer (a response message) reached the mailbox. */
  answered(answer: AnswerFields): void {
    this.#count(answer, false);
  }

  /** An answer left the mailbox (written to a client, or expired): what a restored frame waits for. */
  collected(answer: AnswerFields): void {
    this.#count(answer, true);
  }

  #count(answer: AnswerFields, collected: boolean): void {
    const entry = typeof answer.request_id === 'string' ? this.#entries.get(answer.request_id) : undefined;
    // A restored frame counts the answers it holds once collected, any other entry its answers once made.
    if (!entry || (entry.restored !== undefined) !== collected) return;
    const key = answerKey(answer);
    if (entry.restored && !entry.restored.held.has(key)) return;
    entry.answered.add(key);
    this.#settle(answer.request_id as string, entry);
  }

  #settle(requestId: string, entry: InFlight): void {
    if (entry.expected !== undefined && entry.answered.size >= entry.expected) {
      this.#entries.delete(requestId);
      // A restored frame's time since the restart is no frame latency.
      if (!entry.restored) this.#onAnswered?.(this.#now() - entry.since);
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
/** Beyond this, a header is not looked for in the rest of the content either: the frame weighs `unreadable`. */
const MAX_HEADER_BASE64_CHARS = 1024 * 1024;

/**
 * The `request_id` and image size of a detection request body. The size comes from the image header, read as
 * the decoder reads it (`readImageSize`: libvips, off the event loop) from the start of the base64 content (up
 * to 1 MiB of it only when the header lies further in); a header that cannot be read counts as `unreadable`
 * pixels (the decoder's limit, the most a frame can cost). A reader of its own had been made to read 1×1 of a
 * 25-megapixel JPEG (a stray byte before a marker), and to spend seconds on a body crafted as SVG.
 */
export async function frameRequestFields(body: string, unreadable: number): Promise<FrameRequestFields> {
  const parsed = shallowJson(body) as { request_id?: unknown; content?: unknown } | undefined;
  const id = parsed?.request_id;
  const requestId = detectionRequestSchema.shape.request_id.safeParse(id).success
    ? (id as string)
    : undefined;
  return { requestId, pixels: await imagePixels(parsed?.content, unreadable) };
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
 * Pixels of a base64 image, from its header (see {@link frameRequestFields}): 0 when it is not a non-empty
 * string (refused before decoding), `unreadable` when no header could be read from it.
 */
async function imagePixels(base64: unknown, unreadable: number): Promise<number> {
  if (typeof base64 !== 'string' || base64.length === 0) return 0;
  const size = async (text: string) => {
    const header = await readImageSize(Buffer.from(text, 'base64'));
    return header ? header.width * header.height : undefined;
  };
  return (
    (await size(base64.slice(0, HEADER_BASE64_CHARS))) ??
    (base64.length > HEADER_BASE64_CHARS
      ? await size(base64.slice(0, MAX_HEADER_BASE64_CHARS))
      : undefined) ??
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

/** `GET /responses`' query: answers per poll (default 10, more is taken as 100) and long-poll seconds (≤ 20). */
export const RESPONSES_QUERY = Object.freeze({
  parameters: ['prefix', 'request_id', 'max', 'wait'],
  max: { default: 10, most: 100 },
  wait: { default: 0, most: 20 },
  prefixLength: 256,
});

/**
 * The answers asked for (`prefix`, or one `request_id` exactly), `max` and `wait` of a `GET /responses` query,
 * or what is wrong with it: an unknown or repeated parameter (a misspelt `prefix` would hand this client any
 * client's answers), both `prefix` and `request_id`, an empty `prefix` (an unset client id: it would take every
 * client's answers; leaving it out says that is meant), a value that is no number, a `prefix` longer than any
 * request id, a `request_id` no request can have. `max` above 100 and `wait` above 20 are taken as those (SQS
 * clients ask for more).
 */
export function responsesQuery(
  params: URLSearchParams,
): { readonly match: MailboxMatch; readonly max: number; readonly wait: number } | string {
  const { parameters, max, wait, prefixLength } = RESPONSES_QUERY;
  const routeTakes = `GET /responses takes ${parameters.map((p) => `?${p}=`).join(', ')} only`;
  const keys = [...params.keys()];
  const unknown = new Set(keys.filter((k) => !parameters.includes(k)));
  // Named (cut, escaped: the client's own input, answered to it only, never logged).
  const named = (names: Iterable<string>) =>
    [...names].slice(0, 3).map((k) => JSON.stringify(k.slice(0, 40)));
  if (unknown.size) {
    return `unknown query parameter${unknown.size > 1 ? 's' : ''} ${named(unknown).join(', ')}; ${routeTakes}`;
  }
  const twice = parameters.filter((p) => params.getAll(p).length > 1);
  if (twice.length) return `query parameter ${named(twice).join(', ')} given twice; ${routeTakes}`;
  const prefix = params.get('prefix') ?? '';
  const requestId = params.get('request_id');
  if (params.has('prefix') && requestId !== null) {
    return '?prefix= and ?request_id= together: ask for one request id exactly, or for every id with a prefix';
  }
  if (params.has('prefix') && prefix === '') {
    return "?prefix= is empty, which takes every client's answers: give your request ids' prefix, or leave ?prefix= out to take any answer";
  }
  if (prefix.length > prefixLength) return `?prefix= is at most ${prefixLength} characters`;
  if (requestId !== null && !detectionRequestSchema.shape.request_id.safeParse(requestId).success) {
    return '?request_id= is no request id (1–128 letters, digits and . _ : -)';
  }
  const given = { max: params.get('max'), wait: params.get('wait') };
  if (given.max !== null && !(/^\d{1,9}$/.test(given.max) && Number(given.max) >= 1)) {
    return `?max= takes a whole number ≥ 1 (answers per poll; at most ${max.most} are returned)`;
  }
  if (given.wait !== null && !/^\d{1,9}(\.\d{1,3})?$/.test(given.wait)) {
    return `?wait= takes seconds ≥ 0 (at most ${wait.most} are waited)`;
  }
  return {
    match: requestId === null ? { prefix } : { requestId },
    max: Math.min(given.max === null ? max.default : Number(given.max), max.most),
    wait: Math.min(given.wait === null ? wait.default : Number(given.wait), wait.most),
  };
}
