import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError, type Transport } from '@facerec/framework';
import { kindOf, readFileUpTo, withTimeout } from '@facerec/framework/internal';
import { BODY_LIMITS } from '@facerec/framework/registry';
import { NO_FACE, type ResponseMessage, responseMessageSchema } from '../messages.js';

/** One frame the workload sends, with the identity expected in it (its folder name). */
export interface WorkloadFrame {
  readonly file: string;
  readonly filename: string;
  readonly expected: string | undefined;
  readonly content: string;
}

/** Where answers come from. */
export interface ResponseSource {
  /**
   * Waits briefly and returns the answers that arrived (possibly none). `requestIdPrefix` is the prefix of
   * every request id this workload sends: a source shared with other clients returns only those answers.
   */
  poll(signal: AbortSignal, requestIdPrefix: string): Promise<ResponseMessage[]>;
}

/** `Authorization` for a local runtime started with a token. */
const bearer = (token: string | undefined): Record<string, string> =>
  token ? { authorization: `Bearer ${token}` } : {};

/** How long the client waits before polling again after a poll that returned no answer. */
const EMPTY_POLL_PAUSE_MS = 20;

/**
 * Answers from a local runtime's `GET /responses`: only this workload's, so several clients can run at once.
 * `token`: the runtime's bearer token, when it has one.
 */
export function localResponses(baseUrl: string, options: { readonly token?: string } = {}): ResponseSource {
  return {
    async poll(signal, requestIdPrefix) {
      const url = new URL('/responses', baseUrl);
      url.search = new URLSearchParams({ prefix: requestIdPrefix, max: '100', wait: '1' }).toString();
      const res = await fetch(url, { signal, headers: bearer(options.token) });
      if (!res.ok) throw new Error(`GET /responses answered ${res.status}`);
      const body = (await res.json()) as { messages: unknown[] };
      return body.messages.map((m) => responseMessageSchema.parse(m));
    },
  };
}

/**
 * Answers from a response queue (e.g. the deployed stack's SQS queue, through `@facerec/transport-sqs`): this
 * workload's own reply queue (`WorkloadOptions.replyTo`), or the stack's response queue. Only this workload's
 * answers are deleted; another client's, or a message that is no answer, is left to become visible again
 * (on a queue shared by several clients every receive still counts towards its dead-letter limit: give each
 * client a reply queue of its own instead).
 */
export function queueResponses(transport: Transport, queue: string): ResponseSource {
  return {
    async poll(signal, requestIdPrefix) {
      const messages = await transport.receive(queue, { maxMessages: 10, waitTimeSeconds: 1, signal });
      const mine: { receipt: string; answer: ResponseMessage }[] = [];
      for (const m of messages) {
        let answer: ResponseMessage;
        try {
          answer = responseMessageSchema.parse(JSON.parse(m.body));
        } catch {
          continue;
        }
        if (answer.request_id.startsWith(requestIdPrefix)) mine.push({ receipt: m.receipt, answer });
      }
      if (mine.length) await transport.acknowledge(queue, mine);
      return mine.map((m) => m.answer);
    },
  };
}

/** The largest image file a frame can carry: its base64 and the JSON around it stay under a 6 MiB body. */
export const MAX_FRAME_FILE_BYTES = Math.floor(((BODY_LIMITS.default - 4096) * 3) / 4);

/**
 * Reads `<dir>/<identity>/*.{jpg,jpeg,png,webp}` (and images directly in `dir`, with no expected identity). A
 * linked identity folder is followed, as `facerec enroll` follows it.
 *
 * @param options.maxFileBytes - the largest image file to send: by default {@link MAX_FRAME_FILE_BYTES}, what
 *   a Function URL (and `facerec serve` by default) takes; more for a `serve --max-image-bytes` server.
 * @throws InvalidInputError when `dir` does not exist or is a file, or an image is too large to send.
 */
export async function loadFrames(
  dir: string,
  options: { readonly maxFileBytes?: number } = {},
): Promise<WorkloadFrame[]> {
  const maxFileBytes = options.maxFileBytes ?? MAX_FRAME_FILE_BYTES;
  const why =
    maxFileBytes === MAX_FRAME_FILE_BYTES
      ? `a frame's request body (the image in base64, a third larger) must stay under 6 MiB, the Function URL and serve limit: at most ${MAX_FRAME_FILE_BYTES} bytes of image (resize or recompress it; for a serve started with --max-image-bytes, raise maxFileBytes: the client's --max-frame-bytes)`
      : `over the ${maxFileBytes} bytes allowed to a frame (maxFileBytes: the client's --max-frame-bytes)`;
  const frames: WorkloadFrame[] = [];
  const isImage = (f: string) => /\.(jpe?g|png|webp)$/i.test(f);
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
    throw new InvalidInputError(
      `frames: ${dir} ${code === 'ENOENT' ? 'does not exist' : 'is a file'}; give a folder <dir>/<identity>/*.{jpg,png,webp}`,
    );
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    // A linked identity folder is followed, as `facerec enroll` follows it (one level down: no cycle).
    const folder = (await kindOf(entry, full)) === 'directory';
    const files = folder
      ? (await readdir(full))
          .filter(isImage)
          .sort()
          .map((f) => [path.join(full, f), entry.name] as const)
      : isImage(entry.name)
        ? [[full, undefined] as const]
        : [];
    for (const [file, expected] of files) {
      // Refused before reading: a folder of large photos was read whole (1.2 GB for 40 of 20 MB) to send
      // requests every endpoint refuses.
      const bytes = await readFileUpTo(
        file,
        maxFileBytes,
        (size) =>
          new InvalidInputError(
            `frames: ${file} is ${size === undefined ? `over ${maxFileBytes} bytes` : `${(size / 2 ** 20).toFixed(1)} MiB (${size} bytes)`}; ${why}`,
          ),
      );
      frames.push({ file, filename: path.basename(file), expected, content: bytes.toString('base64') });
    }
  }
  return frames;
}

/** Options of {@link runWorkload}. */
export interface WorkloadOptions {
  /** The detection endpoint (a local runtime's URL or a Function URL). */
  readonly url: string;
  readonly frames: readonly WorkloadFrame[];
  readonly responses: ResponseSource;
  /** Requests to send, cycling through the frames. Default 100. */
  readonly requests?: number;
  /** Requests in flight at once. Default 10. */
  readonly concurrency?: number;
  /**
   * Send at this many requests per second (request `i` leaves at `i / rate` s after the start), as an open
   * load does, instead of as fast as `concurrency` allows; `concurrency` still caps the requests in flight.
   * Default: no pacing.
   */
  readonly rate?: number;
  /**
   * Give up on unanswered requests this long after the last one was sent. A send the server has not answered in
   * this long (a server that takes connections and never answers: frozen, overloaded) stops the run: no more
   * frames are sent, and the report's `unresponsive` says so. Default 60 s.
   */
  readonly timeoutMs?: number;
  /**
   * A reply queue (`reply_to`) sent with every request, one of the deployment's `FACEREC_REPLY_QUEUES`: its
   * answers go there rather than to the shared response queue. Poll that queue in `responses`
   * ({@link queueResponses}).
   */
  readonly replyTo?: string;
  /**
   * Sends one request; default: `fetch` POST of the JSON body. Replace it to sign requests (SigV4). `signal`
   * aborts it: a send unanswered after `timeoutMs`, or still out when the run stops.
   */
  readonly send?: (url: string, body: string, signal?: AbortSignal) => Promise<SendResult>;
  /**
   * Resends of a request answered 503 (server busy, or shutting down), after a wait that doubles from the
   * server's `Retry-After` (else from 400 ms) up to 5 s (or the `Retry-After`, if longer), and of one whose
   * connection was refused (a server restarting) or reset without an answer, doubling from 400 ms.
   * Default 8.
   */
  readonly maxRetries?: number;
  /**
   * How long the server may stay unreachable (every connection refused, from the first refusal after its last
   * answer) while requests are resent; past it every request still to send fails at once. Default 30 000 ms.
   */
  readonly reconnectWindowMs?: number;
  /** Called once each time the server stops answering (connections refused) and once when it is back. */
  readonly onUnreachable?: (unreachable: boolean) => void;
  /** Called after each answered request. */
  readonly onProgress?: (answered: number, total: number) => void;
  /**
   * Called when collecting answers fails (a queue that does not exist, no credentials, access refused, the
   * server gone), with the error, how many polls in a row failed, whether any poll ever succeeded, and the
   * error in words (`reason`: with its cause, as fetch's "fetch failed" says nothing alone). The
   * poller retries after 200 ms, unless this returns `'stop'`: then no more frames are sent, the run ends at
   * once, and the report's `collectionError` says why.
   */
  readonly onPollError?: (
    error: unknown,
    failures: { readonly inARow: number; readonly collectedBefore: boolean; readonly reason: string },
  ) => 'stop' | undefined;
  /**
   * Ends the run early (a user's Ctrl-C): no more frames are sent; the frames in flight get up to
   * {@link INTERRUPT_GRACE_MS} (at most `timeoutMs`) for their answers, and the report covers what was sent
   * (`stopped: true`).
   */
  readonly signal?: AbortSignal;
}

/** What one send returned. */
export interface SendResult {
  readonly status: number;
  readonly body: string;
  /** The `Retry-After` of a 503, in seconds, when the server gave one. */
  readonly retryAfterSeconds?: number;
}

/** Per-request outcome. */
export interface RequestOutcome {
  readonly requestId: string;
  readonly filename: string;
  readonly expected: string | undefined;
  readonly status: number;
  readonly faces: number;
  /** Faces found beyond the server's maximum per frame, not sent on (absent when none). */
  readonly facesLeftOut?: number;
  readonly results: string[];
  readonly latencyMs: number | undefined;
  /**
   * From the send the server accepted (after any 503s) to the last answer: the server's own delay. For a frame
   * taken by a send whose connection was reset, from that send (the first one reset).
   */
  readonly acceptedLatencyMs: number | undefined;
  readonly error?: string;
}

/** Latencies of the answered requests, in ms. */
export interface LatencySummary {
  readonly avg: number;
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

/** What {@link runWorkload} measured. */
export interface WorkloadReport {
  readonly requests: number;
  readonly answered: number;
  readonly unanswered: readonly string[];
  /** Requests the server answered with an error status (after any resends). */
  readonly rejected: number;
  /**
   * Requests that got no HTTP answer at all: the connection was refused until the client gave up, or it was
   * reset or closed on every send allowed (`maxRetries` resends), and no answer came for it.
   */
  readonly failed: number;
  readonly duplicates: number;
  /**
   * Requests resent after a 503 (the server refusing work beyond its admission bound). This and the next two
   * count frames, each once however many times it was resent for that reason.
   */
  readonly retries: number;
  /** Requests resent after a refused connection (nothing listening: a server restarting). */
  readonly reconnects: number;
  /**
   * Requests resent after their connection was reset or closed without an answer (the server may have taken
   * the first send: a local runtime that did answers the resend 409, and the frame is waited for as taken).
   */
  readonly resetResends: number;
  readonly latencyMs: LatencySummary;
  /** The same from the accepted send: what admission control bounds (the rest is the client's resend waits). */
  readonly acceptedLatencyMs: LatencySummary;
  readonly throughputPerSecond: number;
  readonly wallMs: number;
  /**
   * Over answered frames with an expected identity: the faces found and how many were named as expected, and
   * the frames in which no face was found (not counted as faces).
   */
  readonly accuracy: { readonly faces: number; readonly correct: number; readonly noFace: number };
  /**
   * Faces found in the frames and not sent on: beyond the server's maximum per frame (`FACEREC_MAX_FACES`,
   * `serve --max-faces`), the smallest; no answer comes for them.
   */
  readonly facesLeftOut: number;
  readonly outcomes: readonly RequestOutcome[];
  /** Why the run was stopped, when collecting answers failed for good (`onPollError` returned `'stop'`). */
  readonly collectionError?: string;
  /**
   * Why the run was stopped, when a send went unanswered for `timeoutMs` (a server that takes connections and
   * never answers: frozen, or overloaded past the timeout): no more frames were sent.
   */
  readonly unresponsive?: string;
  /**
   * Why the run stopped sending, when the server refused a frame for who sent it (401: no token or a wrong one;
   * 403: a `Host` or `Origin` it does not serve), as it would every other frame.
   */
  readonly refused?: string;
  /** True when `signal` ended the run early. */
  readonly stopped?: boolean;
}

const quantile = (sorted: readonly number[], q: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;

/** A plain JSON POST (with the local runtime's bearer token when it has one). */
export function jsonSender(options: { readonly token?: string } = {}) {
  return async (url: string, body: string, signal?: AbortSignal) => {
    const headers = { 'content-type': 'application/json', ...bearer(options.token) };
    const res = await fetch(url, { method: 'POST', headers, body, ...(signal ? { signal } : {}) });
    const retryAfter = Number(res.headers.get('retry-after'));
    return {
      status: res.status,
      body: await res.text(),
      ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
    };
  };
}
const defaultSend = jsonSender();

/** A failed send's message with its cause (fetch says only "fetch failed"), e.g. "fetch failed (other side closed)". */
function sendFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = (error as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? cause.message || (cause as { code?: string }).code : undefined;
  return detail ? `${message} (${detail})` : message;
}

/** How often a frame taken unseen (a 409 after a reset) is asked for again while no answer has come. */
const UNSEEN_ASK_MS = 2000;

/** A send the server did not answer within the workload's timeout. */
class SendTimeout extends Error {}

/** How long the frames in flight at a Ctrl-C (`WorkloadOptions.signal`) get for their answers. */
export const INTERRUPT_GRACE_MS = 5000;

/** The error codes of a failed send and of its causes (fetch wraps the socket's error). */
function errorCodes(e: unknown): string[] {
  const { code, errors, cause } = (e ?? {}) as { code?: unknown; errors?: unknown; cause?: unknown };
  return [
    ...(typeof code === 'string' ? [code] : []),
    ...(Array.isArray(errors) ? errors.flatMap(errorCodes) : []),
    ...(cause ? errorCodes(cause) : []),
  ];
}

/**
 * Whether a send failed before reaching any server: the connection was refused (nothing listens, as while a
 * server restarts). Such a request was not taken, so sending it again cannot duplicate it.
 */
function connectionRefused(error: unknown): boolean {
  const found = errorCodes(error);
  return found.length > 0 && found.every((code) => code === 'ECONNREFUSED');
}

/**
 * Whether the connection closed under a send without an answer: reset (`ECONNRESET`, `EPIPE`) or closed by the
 * other side (undici's `UND_ERR_SOCKET`, "other side closed"), as when a server closes an idle keep-alive
 * connection just as a request goes out on it, or is killed. The frame may or may not have been taken: it is
 * resent with the same request id, and the local runtime answers a frame it still has in flight 409, which
 * says the first send was taken (on a Function URL the resend is a second frame: its answers repeat the first's,
 * and count as duplicates).
 */
function connectionReset(error: unknown): boolean {
  return errorCodes(error).some(
    (code) => code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET',
  );
}

/**
 * The workload client: sends `requests` frames at `concurrency`, collects every answer, and measures the
 * latency of each request from sending it to its last face's answer.
 */
export async function runWorkload(options: WorkloadOptions): Promise<WorkloadReport> {
  const total = options.requests ?? 100;
  const concurrency = options.concurrency ?? 10;
  const timeoutMs = options.timeoutMs ?? 60_000;
  /** Aborted when the run stops with sends still out (Ctrl-C's grace over, answers that cannot be collected). */
  const abandon = new AbortController();
  const sendWith = options.send ?? defaultSend;
  // One listener per send in flight (at most `concurrency`, and the resends asking after a frame).
  setMaxListeners(0, abandon.signal);
  // Each send gives up after the timeout: a server that takes the connection and never answers (frozen) would
  // otherwise hold its worker, and the run, until the HTTP client's own 300 s header timeout (also with a
  // `send` of the caller's that ignores its signal). The first such send stops the run: every later frame would
  // wait as long for nothing.
  const send = async (url: string, body: string) => {
    if (abandon.signal.aborted) throw abandon.signal.reason;
    try {
      return await withTimeout(
        (signal) => sendWith(url, body, signal),
        timeoutMs,
        () => new SendTimeout(`the server did not answer the send within ${timeoutMs / 1000} s`),
        abandon.signal,
      );
    } catch (error) {
      if (error instanceof SendTimeout) {
        unresponsive ??= `${error.message} (frozen, or overloaded past --timeout)`;
        halt();
      }
      throw error;
    }
  };
  if (options.frames.length === 0) throw new Error('no frames to send');
  // Unique per run, so that clients started together never share a request id prefix.
  const runId = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;

  interface State {
    frame: WorkloadFrame;
    sentAt: number;
    acceptedAt?: number;
    status: number;
    faces: number | undefined;
    facesLeftOut?: number;
    answered: Map<string, ResponseMessage>;
    /**
     * Taken by a send whose answer was lost (its connection reset, the resend refused 409 as in flight): the
     * number of faces comes with the answers (`face_count`) instead.
     */
    takenUnseen?: boolean;
    /** When the first send whose connection was reset went out: the frame may have been taken then. */
    resetAt?: number;
    doneAt?: number;
    error?: string;
    resolve?: () => void;
  }
  const states = new Map<string, State>();
  let duplicates = 0;
  let retries = 0;
  let reconnects = 0;
  let resetResends = 0;
  /** When the server started refusing connections; undefined while it answers. */
  let unreachableSince: number | undefined;
  const reconnectWindowMs = options.reconnectWindowMs ?? 30_000;
  const gaveUp = () =>
    unreachableSince !== undefined && performance.now() - unreachableSince > reconnectWindowMs;
  const maxRetries = options.maxRetries ?? 8;
  let answeredCount = 0;
  /**
   * A frame taken by a send whose answer was lost (see {@link connectionReset}): accepted when that send went
   * out, and its number of faces is the one its answers give (`face_count`), once one has come.
   */
  const takeUnseen = (id: string, s: State) => {
    s.takenUnseen = true;
    s.status = 200;
    s.error = undefined;
    s.acceptedAt = s.resetAt;
    const first = s.answered.values().next().value;
    if (first) s.faces = first.face_count;
    complete(id, s);
  };
  const complete = (id: string, s: State) => {
    if (s.doneAt !== undefined || s.faces === undefined) return;
    const needed = Math.max(s.faces, 1);
    if (s.answered.size >= needed) {
      s.doneAt = performance.now();
      answeredCount++;
      options.onProgress?.(answeredCount, total);
      s.resolve?.();
    }
    void id;
  };

  /** The next request to send; set to `total` to send no more. */
  let next = 0;
  const stop = new AbortController();
  let collectionError: string | undefined;
  let unresponsive: string | undefined;
  let refused: string | undefined;
  /** Ends the run: nothing more is sent, no frame waits for answers any longer, sends still out are dropped. */
  let halted = false;
  const halt = () => {
    halted = true;
    next = total;
    for (const s of states.values()) s.resolve?.();
    abandon.abort();
  };
  /** Ctrl-C: nothing more is sent; the frames in flight get a grace for their answers, then the run stops. */
  let interrupted = false;
  let grace: NodeJS.Timeout | undefined;
  const interrupt = () => {
    interrupted = true;
    next = total;
    grace = setTimeout(halt, Math.min(timeoutMs, INTERRUPT_GRACE_MS));
  };
  options.signal?.addEventListener('abort', interrupt, { once: true });
  if (options.signal?.aborted) halt();
  const poller = (async () => {
    let failing = 0;
    let collected = false;
    while (!stop.signal.aborted) {
      let batch: ResponseMessage[];
      try {
        batch = await options.responses.poll(stop.signal, `${runId}-`);
        failing = 0;
        collected = true;
      } catch (error) {
        if (stop.signal.aborted) return;
        const reason = sendFailure(error);
        if (
          options.onPollError?.(error, { inARow: ++failing, collectedBefore: collected, reason }) === 'stop'
        ) {
          // Nothing more is sent, and no frame waits for answers that cannot come.
          collectionError = reason;
          halt();
          return;
        }
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      // A poller that answers at once with nothing (no long poll) would otherwise keep this loop from ever
      // yielding to timers: the workload's own timeout would never fire.
      if (!batch.length) await new Promise((r) => setTimeout(r, EMPTY_POLL_PAUSE_MS));
      for (const answer of batch) {
        const s = states.get(answer.request_id);
        if (!s) continue;
        if (s.takenUnseen && s.faces === undefined) s.faces = answer.face_count;
        const key = answer.result === NO_FACE ? 'none' : String(answer.face_index);
        if (s.answered.has(key)) duplicates++;
        else s.answered.set(key, answer);
        // Answers for a frame whose sends ended in an error after a reset: the reset send was taken after all.
        if (s.error !== undefined && s.resetAt !== undefined) takeUnseen(answer.request_id, s);
        else complete(answer.request_id, s);
      }
    }
  })();

  /** The server's answer to the send made at `sentAt`: the frame taken (200, with its face count), or refused. */
  const settle = (id: string, s: State, res: SendResult, sentAt: number) => {
    s.status = res.status;
    s.acceptedAt = sentAt;
    if (res.status !== 200) {
      s.error = res.body.slice(0, 200);
      // Refused for who sent it: every other frame would be too. No more are sent; those out are answered.
      if (res.status === 401 || res.status === 403) {
        refused ??= `HTTP ${res.status} ${s.error}`;
        next = total;
      }
    } else {
      const taken = JSON.parse(res.body) as { faces: number; faces_found?: number };
      s.faces = taken.faces;
      // A server that sends on at most so many faces per frame left the smallest out (older ones do not say).
      if (taken.faces_found !== undefined && taken.faces_found > taken.faces)
        s.facesLeftOut = taken.faces_found - taken.faces;
      complete(id, s);
    }
  };

  /**
   * After a 409 the reset send was still being detected; should its detection then fail (a bad frame, a server
   * draining), no answer would ever come. Until one does, the frame is asked for again every 2 s: 409 (or 503)
   * means still in flight, 200 that it is taken anew, any other status is its outcome.
   */
  const askWhileUnseen = async (id: string, s: State, body: string, done: Promise<void>) => {
    const until = performance.now() + timeoutMs;
    while (s.answered.size === 0 && s.doneAt === undefined && !halted && performance.now() < until) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, UNSEEN_ASK_MS)))]);
      clearTimeout(timer);
      if (s.answered.size > 0 || s.doneAt !== undefined || halted) return;
      const askedAt = performance.now();
      const again = await send(options.url, body).catch(() => undefined);
      if (!again || again.status === 409 || again.status === 503) continue;
      s.takenUnseen = false;
      settle(id, s, again, askedAt);
      return;
    }
  };

  const started = performance.now();
  /** When the last frame was sent (or resent). */
  let lastSentAt = started;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      if (options.rate !== undefined) {
        const wait = started + (i * 1000) / options.rate - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        // Stopped during the wait: this frame is not sent.
        if (halted || interrupted) return;
      }
      const frame = options.frames[i % options.frames.length]!;
      const requestId = `${runId}-${i}`;
      const s: State = { frame, sentAt: performance.now(), status: 0, faces: undefined, answered: new Map() };
      states.set(requestId, s);
      const done = new Promise<void>((resolve) => {
        s.resolve = resolve;
      });
      try {
        const body = JSON.stringify({
          content: frame.content,
          request_id: requestId,
          filename: frame.filename,
          ...(options.replyTo === undefined ? {} : { reply_to: options.replyTo }),
        });
        let attemptAt = performance.now();
        // A refused connection (a server restarting) is resent like a 503, and so is a reset one (see
        // connectionReset); the last one is thrown.
        const attempt = async (last: boolean): Promise<SendResult | 'refused' | 'reset'> => {
          lastSentAt = performance.now();
          try {
            const result = await send(options.url, body);
            if (unreachableSince !== undefined) {
              unreachableSince = undefined;
              options.onUnreachable?.(false);
            }
            return result;
          } catch (error) {
            if (connectionReset(error) && !last) {
              s.resetAt ??= attemptAt;
              return 'reset';
            }
            if (!connectionRefused(error)) throw error;
            if (unreachableSince === undefined) {
              unreachableSince = performance.now();
              options.onUnreachable?.(true);
            }
            if (last || gaveUp()) throw error;
            return 'refused';
          }
        };
        let res = await attempt(maxRetries === 0);
        const resentFor = new Set<'refused' | 'reset' | 'busy'>();
        /** Answers came for a frame being resent after a reset: the reset send was taken. */
        let answeredMeanwhile = false;
        // A busy server (admission control) answers 503: wait as it asks (or back off) and resend.
        for (
          let n = 1;
          (res === 'refused' || res === 'reset' || res.status === 503) && n <= maxRetries;
          n++
        ) {
          const why = typeof res === 'string' ? res : 'busy';
          // Doubling from the server's Retry-After (else from 400 ms) up to 5 s (or the Retry-After, if longer),
          // so that clients a busy server keeps refusing do not all come back at its fixed second.
          const first = typeof res !== 'string' && res.retryAfterSeconds ? res.retryAfterSeconds * 1000 : 400;
          const base = Math.max(first, Math.min(first * 2 ** (n - 1), 5000));
          await new Promise((r) => setTimeout(r, base * (1 + Math.random() / 4)));
          // Stopped meanwhile (Ctrl-C, or the run halted): the frame is not sent again.
          if (halted || interrupted) break;
          // Sent again, it would be detected and answered twice (a server restarted on its queue file makes the
          // answers of what it held while the client is still waiting to reconnect).
          if (s.resetAt !== undefined && s.answered.size > 0) {
            answeredMeanwhile = true;
            break;
          }
          // Frames, not attempts: a frame resent three times for the same reason counts once.
          if (!resentFor.has(why)) {
            resentFor.add(why);
            if (why === 'refused') reconnects++;
            else if (why === 'reset') resetResends++;
            else retries++;
          }
          attemptAt = performance.now();
          res = await attempt(n === maxRetries || gaveUp());
        }
        if (answeredMeanwhile) takeUnseen(requestId, s);
        else if (typeof res === 'string')
          throw new Error(`connection ${res}`); // not reached: the last attempt throws
        else if (res.status === 409 && s.resetAt !== undefined) {
          // The reset send was taken, and the frame is still in flight: its answers are coming.
          takeUnseen(requestId, s);
          await askWhileUnseen(requestId, s, body, done);
        } else settle(requestId, s, res, attemptAt);
      } catch (error) {
        s.error = connectionRefused(error)
          ? `connection refused: nothing listens at ${options.url.slice(0, 200)}`
          : error instanceof SendTimeout
            ? error.message
            : abandon.signal.aborted
              ? 'the run stopped before the server answered the send'
              : sendFailure(error);
      }
      if (s.error !== undefined) {
        // Answered after all: a reset send was taken, whatever the resends then met.
        if (s.resetAt !== undefined && s.answered.size > 0) takeUnseen(requestId, s);
        else continue;
      }
      // Keep `concurrency` requests in flight end to end (sent and not yet fully answered). The timer is
      // cleared once the answer is in, or it would hold the process open for the whole timeout.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  // At most the timeout after the last send (a worker that waited for its frame's answers already spent part of
  // it: counted from the end of the sending, the run took up to twice the timeout).
  const deadline = lastSentAt + timeoutMs;
  while (
    !halted &&
    // Frames accepted, and those whose sends failed or were refused as busy after a reset (the reset send may
    // have been taken: its answers turn them into answered frames), wait for their answers. A frame refused
    // otherwise (4xx) was refused for what it is: the reset send was too.
    [...states.values()].some(
      (s) =>
        (s.status === 200 || (s.resetAt !== undefined && (s.status === 0 || s.status === 503))) &&
        s.doneAt === undefined,
    ) &&
    performance.now() < deadline
  ) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const wallMs = performance.now() - started;
  // The listener first: a Ctrl-C from here on would arm a grace for a run that is over.
  options.signal?.removeEventListener('abort', interrupt);
  clearTimeout(grace);
  stop.abort();
  await poller;

  const outcomes: RequestOutcome[] = [...states.entries()].map(([requestId, s]) => ({
    requestId,
    filename: s.frame.filename,
    expected: s.frame.expected,
    status: s.status,
    faces: s.faces ?? 0,
    ...(s.facesLeftOut ? { facesLeftOut: s.facesLeftOut } : {}),
    results: [...s.answered.values()].map((a) => a.result),
    latencyMs: s.doneAt === undefined ? undefined : s.doneAt - s.sentAt,
    acceptedLatencyMs:
      s.doneAt === undefined || s.acceptedAt === undefined ? undefined : s.doneAt - s.acceptedAt,
    ...(s.error ? { error: s.error } : {}),
  }));
  const summarise = (values: number[]): LatencySummary => {
    const sorted = values.sort((a, b) => a - b);
    return {
      // NaN (null in JSON) when nothing was answered, as the percentiles: no average of no latency.
      avg: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : Number.NaN,
      p50: quantile(sorted, 0.5),
      p95: quantile(sorted, 0.95),
      max: sorted.at(-1) ?? Number.NaN,
    };
  };
  const latencies = outcomes.flatMap((o) => (o.latencyMs === undefined ? [] : [o.latencyMs]));
  let faces = 0;
  let correct = 0;
  let noFace = 0;
  for (const o of outcomes) {
    // Only answered requests: a send that failed after the server took the frame may still get answers.
    if (o.expected === undefined || o.latencyMs === undefined) continue;
    for (const r of o.results) {
      if (r === NO_FACE) {
        noFace++;
        continue;
      }
      faces++;
      if (r === o.expected) correct++;
    }
  }
  return {
    // A run ended early counts the frames it sent.
    requests: halted || interrupted || refused !== undefined ? states.size : total,
    answered: latencies.length,
    unanswered: outcomes.filter((o) => o.status === 200 && o.latencyMs === undefined).map((o) => o.requestId),
    rejected: outcomes.filter((o) => o.status !== 0 && o.status !== 200).length,
    failed: outcomes.filter((o) => o.status === 0).length,
    duplicates,
    retries,
    reconnects,
    resetResends,
    latencyMs: summarise(latencies),
    acceptedLatencyMs: summarise(
      outcomes.flatMap((o) => (o.acceptedLatencyMs === undefined ? [] : [o.acceptedLatencyMs])),
    ),
    throughputPerSecond: (latencies.length / wallMs) * 1000,
    wallMs,
    accuracy: { faces, correct, noFace },
    facesLeftOut: outcomes.reduce((sum, o) => sum + (o.facesLeftOut ?? 0), 0),
    outcomes,
    ...(collectionError === undefined ? {} : { collectionError }),
    ...(unresponsive === undefined ? {} : { unresponsive }),
    ...(refused === undefined ? {} : { refused }),
    ...(options.signal?.aborted ? { stopped: true } : {}),
  };
}

/** The report as printable lines. */
export function formatWorkloadReport(report: WorkloadReport): string[] {
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const lines = [
    `requests: ${report.requests}, answered: ${report.answered}, rejected: ${report.rejected}, ` +
      (report.failed ? `failed to send: ${report.failed}, ` : '') +
      `unanswered: ${report.unanswered.length}, duplicate answers: ${report.duplicates}` +
      // Frames, not resends: a frame resent three times for one reason counts once.
      (report.retries ? `, frames resent after 503 (busy or shutting down): ${report.retries}` : '') +
      (report.reconnects ? `, frames resent after a refused connection: ${report.reconnects}` : '') +
      (report.resetResends ? `, frames resent after a reset connection: ${report.resetResends}` : ''),
    report.answered
      ? `latency (sent → last answer): avg ${ms(report.latencyMs.avg)}, p50 ${ms(report.latencyMs.p50)}, p95 ${ms(report.latencyMs.p95)}, max ${ms(report.latencyMs.max)}`
      : 'latency: no request was answered',
    ...(report.retries && report.answered
      ? [
          `  from the accepted send (after 503s): avg ${ms(report.acceptedLatencyMs.avg)}, p50 ${ms(report.acceptedLatencyMs.p50)}, p95 ${ms(report.acceptedLatencyMs.p95)}, max ${ms(report.acceptedLatencyMs.max)}`,
        ]
      : []),
    `throughput: ${report.throughputPerSecond.toFixed(1)} requests/s over ${(report.wallMs / 1000).toFixed(1)} s`,
    ...(report.facesLeftOut
      ? [
          `faces left out: ${report.facesLeftOut} in ${report.outcomes.filter((o) => o.facesLeftOut).length} frame(s) had more faces than the server sends on per frame (the smallest; serve --max-faces, FACEREC_MAX_FACES)`,
        ]
      : []),
    ...(report.collectionError ? [`stopped: answers cannot be collected: ${report.collectionError}`] : []),
    ...(report.unresponsive ? [`stopped, no more frames sent: ${report.unresponsive}`] : []),
    ...(report.refused
      ? [`stopped, no more frames sent: the server refuses this client: ${report.refused}`]
      : []),
    ...(report.stopped ? ['stopped early (Ctrl-C): the figures cover the frames sent until then'] : []),
  ];
  const { faces, correct, noFace } = report.accuracy;
  if (faces || noFace) {
    lines.push(
      `accuracy: ${correct}/${faces} faces (${faces ? ((100 * correct) / faces).toFixed(1) : '–'}%) named as their folder` +
        (noFace ? `; no face found in ${noFace} ${noFace === 1 ? 'frame' : 'frames'}` : ''),
    );
  }
  // Named with their files, the first few only: a server gone leaves every remaining request unanswered.
  const fileOf = new Map(report.outcomes.map((o) => [o.requestId, o.filename]));
  const unanswered = report.unanswered.slice(0, 5).map((id) => `${id} (${fileOf.get(id) ?? '?'})`);
  if (unanswered.length) {
    lines.push(
      `unanswered: ${report.unanswered.length} (${unanswered.join(', ')}${report.unanswered.length > 5 ? ', …' : ''}); --json lists them all`,
    );
  }
  // Failed requests grouped by what happened (a server gone fails every remaining request the same way).
  const failures = new Map<string, RequestOutcome[]>();
  for (const o of report.outcomes.filter((x) => x.error)) {
    const what = o.status ? `HTTP ${o.status} ${o.error}` : `no answer: ${o.error}`;
    failures.set(what, [...(failures.get(what) ?? []), o]);
  }
  for (const [what, outcomes] of failures) {
    const named = outcomes
      .slice(0, 3)
      .map((o) => `${o.requestId} (${o.filename})`)
      .join(', ');
    lines.push(
      outcomes.length === 1
        ? `${named}: ${what}`
        : `${outcomes.length} requests (${named}${outcomes.length > 3 ? ', …' : ''}): ${what}`,
    );
  }
  return lines;
}
