import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  DEFAULT_DECODE_LIMITS,
  InvalidOptionsError,
  MAX_DECODE_LIMITS,
  type ReceivedMessage,
} from '@facerec/framework';
import { BODY_LIMITS } from '@facerec/framework/registry';
import type { InMemoryQueueTransport } from '@facerec/transport-memory';
import { Semaphore } from 'async-mutex';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { FunctionUrlEvent, FunctionUrlResult } from '../detection.js';
import { type PipelineLogger, silentLogger } from '../logger.js';
import { type RecordBatchHandler, recordHandlerOf, type SqsEventHandler } from '../sqs-batch.js';
import type { CollectionsApi } from './collections-api.js';
import { ResponseMailbox } from './mailbox.js';
import { LATENCY_BUCKETS_SECONDS } from './prometheus.js';
import { frameRequestFields, RequestsInFlight, responsesQuery } from './requests.js';
import { withChildSignal } from './signals.js';

/** Refusals logged one by one each second; more are counted in one line (`facerec_requests_refused_total` has all). */
const REFUSALS_LOGGED_PER_SECOND = 20;

/** Addresses that only this machine can reach. */
const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', 'localhost', '::1']);
/** Host headers a loopback server accepts (name and optional port). */
const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i;

/**
 * Refuses to listen beyond loopback without a token. Exported so that a caller (`facerec serve`) can refuse
 * before it loads any model.
 * @throws {@link InvalidOptionsError}
 */
export function assertTokenWhereNeeded(host: string, token: string | undefined): void {
  // A header value carries visible ASCII only: a token with anything else could never be presented.
  if (token !== undefined && !/^[\x21-\x7e]*$/.test(token)) {
    throw new InvalidOptionsError(
      'local runtime',
      'the token holds a space, a control or a non-ASCII character, which no Authorization header can carry',
    );
  }
  if (LOOPBACK_ADDRESSES.has(host)) return;
  if (!token) {
    throw new InvalidOptionsError(
      'local runtime',
      `listening on ${host} (not loopback) needs a token: every request must then carry Authorization: Bearer <token>`,
    );
  }
  // Refusals of a wrong token are not slowed down: on a network, only its length keeps it from being guessed.
  if (token.length < MIN_NETWORK_TOKEN_LENGTH) {
    throw new InvalidOptionsError(
      'local runtime',
      `listening on ${host} (not loopback) needs a token of at least ${MIN_NETWORK_TOKEN_LENGTH} characters (got ` +
        `${token.length}): one that cannot be guessed, e.g. from \`openssl rand -hex 16\``,
    );
  }
}

/** The shortest token {@link assertTokenWhereNeeded} takes for a server listening beyond loopback. */
export const MIN_NETWORK_TOKEN_LENGTH = 16;

/** Constant-time comparison of an `Authorization: Bearer …` header with the token. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Options of {@link startLocalRuntime}. */
export interface LocalRuntimeOptions {
  /** The detection handler (the same function that runs on Lambda). */
  readonly detection: (event: FunctionUrlEvent) => Promise<FunctionUrlResult>;
  /**
   * The recognition handler (the same function that runs on Lambda). The runtime feeds the queue's messages
   * to its transport-neutral `handleRecords` (see `createRecognitionHandler`); a handler without one gets them
   * as an SQS event.
   */
  readonly recognition: SqsEventHandler & { readonly handleRecords?: RecordBatchHandler };
  /** The in-process queues the handlers publish to. */
  readonly transport: InMemoryQueueTransport;
  readonly requestQueue: string;
  readonly responseQueue: string;
  /**
   * The request queue's dead-letter queue, when it has one: `GET /health` gives its depth (faces delivered too
   * often without an answer, whose frames get none for them).
   */
  readonly deadLetterQueue?: string;
  /** Port on 127.0.0.1; 0 picks a free one. Default 3000. */
  readonly port?: number;
  readonly host?: string;
  /** Records per recognition invocation (1–10), like the event source mapping's batch size. Default 10. */
  readonly batchSize?: number;
  /** Concurrent recognition consumers. Default 1. */
  readonly consumers?: number;
  /** Largest request body read, in bytes; larger ones get 413 without being buffered. Default 6 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * Time a client has to send a whole request, in milliseconds; a slower one gets 408 and frees its place
   * among `maxInFlight`. Default 30 000 (a 6 MiB body needs 1.6 Mbit/s); headers get at most 10 s of it. A
   * body arriving slower than 16 KiB/s on average gets 408 after 5 s already.
   */
  readonly requestTimeoutMs?: number;
  /**
   * When set, every request must carry `Authorization: Bearer <token>` (401 otherwise). Required when `host`
   * is not a loopback address: the server would otherwise take frames from anyone on the network.
   */
  readonly token?: string;
  /**
   * Admission control: frames being read or detected at once. Beyond it a POST is answered 503 with
   * `Retry-After` at once, instead of queueing without bound (latency and memory grow with the queue).
   * Default 16.
   */
  readonly maxInFlight?: number;
  /** Admission control: request-queue messages (faces waiting or being recognised) beyond which a POST gets 503. Default 256. */
  readonly maxQueueDepth?: number;
  /**
   * Admission control by size: pixels (`width × height`, read from each image's header) of the frames being
   * decoded and detected at once. A frame that would go beyond it waits, in arrival order, for frames before
   * it to finish; it already counts among `maxInFlight`. A frame larger than the whole budget runs alone.
   * Memory then grows with the pixels in flight, not with the number of frames. Counted in units of 10,000
   * pixels, rounded up. Default {@link DEFAULT_MAX_IN_FLIGHT_PIXELS}.
   */
  readonly maxInFlightPixels?: number;
  /**
   * The detection handler's pixel limit (`FACEREC_MAX_IMAGE_PIXELS`): what a frame whose header cannot be read
   * counts as in `maxInFlightPixels`, the most it can cost. Default `DEFAULT_DECODE_LIMITS.maxPixels`.
   */
  readonly maxImagePixels?: number;
  readonly logger?: PipelineLogger;
  /**
   * The collections API (`/collections/{name}/faces`, see `createCollectionsApi`): people added and removed at
   * run time. Requires `token`: it changes who the pipeline recognises.
   */
  readonly collections?: CollectionsApi;
  /**
   * Serves `GET /metrics` (Prometheus text format) from this registry: `createPrometheusMetrics().registry`,
   * whose metrics the handlers count into when composed with it. The runtime adds its own: queue depths, frames
   * and pixels in flight, answers held for clients, requests it refused by status, answers dropped
   * uncollected. Like `/health`, it is served while draining, and needs the token when there is one.
   */
  readonly prometheus?: Registry;
  /**
   * What `GET /health` checks besides the runtime itself, by name (`facerec serve`: `gallery`, the store's
   * `checkReachable`). Each runs at most once a second (health checks in between share its result) and counts
   * as failed after {@link HEALTH_CHECK_TIMEOUT_MS}; while one fails, `/health` answers 503 with `status:
   * 'degraded'`, so that a load balancer takes the server out of rotation, and says why under `checks`.
   */
  readonly checks?: Readonly<Record<string, () => Promise<void>>>;
}

/** A `/health` check that has not answered within this time counts as failed. */
export const HEALTH_CHECK_TIMEOUT_MS = 5000;

/** The outcome of one `/health` check. */
export type HealthCheckResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/**
 * Runs the named checks at most once per `intervalMs` each (callers in between share the result), each failing
 * after `timeoutMs` without an answer.
 */
export function healthChecks(
  checks: Readonly<Record<string, () => Promise<void>>>,
  intervalMs = 1000,
  timeoutMs = HEALTH_CHECK_TIMEOUT_MS,
): () => Promise<Record<string, HealthCheckResult>> {
  const last = new Map<string, { at: number; result: Promise<HealthCheckResult> }>();
  const run = (check: () => Promise<void>): Promise<HealthCheckResult> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      timer.unref();
    });
    return Promise.race([Promise.resolve().then(check), timeout])
      .then(
        (): HealthCheckResult => ({ ok: true }),
        (error: unknown): HealthCheckResult => ({
          ok: false,
          error: error instanceof Error ? error.message : String(error),
        }),
      )
      .finally(() => clearTimeout(timer));
  };
  return async () => {
    const now = performance.now();
    const entries = Object.entries(checks).map(async ([name, check]) => {
      let entry = last.get(name);
      if (!entry || now - entry.at >= intervalMs) {
        entry = { at: now, result: run(check) };
        last.set(name, entry);
      }
      return [name, await entry.result] as const;
    });
    return Object.fromEntries(await Promise.all(entries));
  };
}

/** Work a local runtime still holds: frames being detected, faces being recognised, answers not collected. */
export interface LocalRuntimeBacklog {
  /** Frames being read or detected. */
  readonly detecting: number;
  /** Faces waiting for recognition or being recognised. */
  readonly recognising: number;
  /** Answers no client has collected yet. */
  readonly uncollected: number;
  /** Faces being added over the collections API (one at a time). */
  readonly adding: number;
}

/** Options of {@link LocalRuntime.drain}. */
export interface DrainOptions {
  /** Longest wait, in milliseconds. Default 10 000. */
  readonly timeoutMs?: number;
  /** Stops waiting at once when aborted (a second Ctrl-C). */
  readonly signal?: AbortSignal;
}

/** What {@link LocalRuntime.drain} left behind. */
export interface DrainReport {
  /** True when nothing was left: every frame taken was answered and every answer collected. */
  readonly drained: boolean;
  /**
   * Frames whose connection the stop closed while they were detected, before their answer: their clients got
   * none and should send them again (their faces may have been queued all the same, and are then in `left`).
   */
  readonly cutOff: number;
  /**
   * What was left at the stop: counted once the connections were closed and the detections running then had
   * ended (`detecting` counts those that had not, after 10 s, or at once after a second Ctrl-C).
   */
  readonly left: LocalRuntimeBacklog;
  /** Answers dropped uncollected since the start (past their time, or for room; each drop was logged). */
  readonly answersDropped: number;
  /**
   * Faces being added over the collections API when the stop closed their connection (the drain's time ran out
   * while their store did not answer): their clients got no answer, and each was stored or not (the stop
   * waits for the store before it ends); listing the collection tells.
   */
  readonly addsCutOff: number;
  readonly waitedMs: number;
}

/** The answer to a frame while the runtime stops. */
const STOPPING = {
  error: 'shutting down: not taking frames; answers can still be collected',
  request_id: null,
} as const;
/** The answer to a collections API request while the runtime stops (it is not a frame: no request id). */
const STOPPING_COLLECTIONS = {
  error:
    'shutting down: not taking changes to the collections or reading them; send it to the server again once it is back',
} as const;

/**
 * After a drain closed the connections, how long it waits for the detections still running to end before it
 * counts what is left (a 25-megapixel frame takes a few seconds on 2 cores).
 */
const DETECTIONS_SETTLE_MS = 10_000;

/** The pixel budget's granularity: a frame's pixels are counted rounded up to a multiple of this. */
const PIXEL_UNIT = 10_000;

/** Default `maxInFlightPixels`: two frames at `decodeImage`'s 25-megapixel limit, one per worker on 2 cores. */
export const DEFAULT_MAX_IN_FLIGHT_PIXELS = 2 * DEFAULT_DECODE_LIMITS.maxPixels;

/** A running local runtime. */
export interface LocalRuntime {
  /** Base URL, e.g. `http://127.0.0.1:3000`. POST frames here; GET `/responses` to collect answers. */
  readonly url: string;
  /** What the runtime holds now (the same figures as `GET /health`). */
  backlog(): LocalRuntimeBacklog;
  /**
   * A graceful stop: from now on frames (and collections API requests) get 503 with `Retry-After`, while the
   * frames already taken are detected and recognised, a face being added is stored, and clients go on
   * collecting answers (`GET /responses`, `GET /health`), until nothing is left or `timeoutMs` passed; then
   * {@link LocalRuntime.close}. What is left
   * (answers nobody collected) stays in a durable queue for the next start; an in-memory queue loses it.
   */
  drain(options?: DrainOptions): Promise<DrainReport>;
  /**
   * Stops the server (closing open connections and long polls at once) and the consumers, after the batch each
   * is processing. Answers not yet collected are not delivered: a durable queue keeps them for the next start.
   */
  close(): Promise<void>;
}

/** Methods and routes named in the refusal log; any other is logged as `other` (never echoed). */
const KNOWN_METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']);
const KNOWN_ROUTES = new Set(['/', '/responses', '/health', '/metrics']);

/** The route a request was for, as logged: a known route, `/collections`, or `other` (never the path sent). */
function routeOf(req: IncomingMessage): string {
  const pathname = (req.url ?? '/').split('?')[0]!;
  if (KNOWN_ROUTES.has(pathname)) return pathname;
  return pathname.startsWith('/collections/') ? '/collections' : 'other';
}

/**
 * Why a POSTed body is not one the runtime reads (415), or undefined: JSON in UTF-8, not compressed. A gzip
 * body was read as text and refused as "not a JSON object", and a Latin-1 one had its accents replaced.
 */
function jsonBodyIssue(req: IncomingMessage): { readonly error: string; readonly log: string } | undefined {
  const [type, ...parameters] = (req.headers['content-type'] ?? '').split(';').map((p) => p.trim());
  if (type!.toLowerCase() !== 'application/json') {
    return { error: 'content-type must be application/json', log: 'content-type is not application/json' };
  }
  const charset = parameters
    .map((p) => /^charset\s*=\s*"?([^";]*)"?$/i.exec(p)?.[1]?.toLowerCase())
    .find((c) => c !== undefined);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return { error: 'the JSON body must be UTF-8 (charset=utf-8 or none)', log: 'charset is not utf-8' };
  }
  const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    return {
      error: 'content-encoding is not supported: send the JSON body uncompressed',
      log: 'content-encoding is not identity',
    };
  }
  return undefined;
}

/**
 * The slowest a request body may arrive once {@link SLOW_BODY_GRACE_MS} have passed: 16 KiB/s (128 kbit/s). A
 * client that trickles a frame (a byte every second) held one of the `maxInFlight` places for the whole request
 * timeout; sixteen of them refused every other frame, again and again.
 */
const MIN_BODY_BYTES_PER_SECOND = 16 * 1024;
const SLOW_BODY_GRACE_MS = 5_000;

/** Whether `req` declares (`Content-Length`) a body of more than `limit` bytes. */
function declaredOver(req: IncomingMessage, limit: number): boolean {
  const declared = Number(req.headers['content-length']);
  return Number.isSafeInteger(declared) && declared > limit;
}

/**
 * Reads a request body of at most `limit` bytes. A larger one is `'too-large'`: read to its end and discarded
 * when it is at most `discardUpTo` bytes (twice the limit by default), so that a client sending the whole body
 * before it reads the answer (Python's urllib, http.client) gets the refusal, not a broken pipe from a
 * connection closed under its upload; beyond that, at once, the connection then closed with the rest unread.
 * A body arriving too slowly (see {@link MIN_BODY_BYTES_PER_SECOND}) is `'too-slow'`, or `'too-large'` when it
 * was that already.
 */
function readBody(
  req: IncomingMessage,
  limit: number,
  discardUpTo = 2 * limit,
): Promise<Buffer | 'too-large' | 'too-slow'> {
  const over = declaredOver(req, limit);
  if (declaredOver(req, discardUpTo)) {
    req.resume();
    return Promise.resolve('too-large');
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const started = performance.now();
    const stop = (outcome: 'too-large' | 'too-slow') => {
      clearInterval(check);
      req.removeAllListeners('data');
      req.pause();
      resolve(outcome);
    };
    const check = setInterval(() => {
      const elapsed = performance.now() - started;
      if (elapsed > SLOW_BODY_GRACE_MS && size < (MIN_BODY_BYTES_PER_SECOND * elapsed) / 1000) {
        stop(over || size > limit ? 'too-large' : 'too-slow');
      }
    }, 500);
    check.unref();
    // Past the limit the rest is discarded, not buffered.
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit && !over) chunks.push(chunk);
      else if (size > discardUpTo) stop('too-large');
    });
    req.on('end', () => {
      clearInterval(check);
      resolve(over || size > limit ? 'too-large' : Buffer.concat(chunks));
    });
    req.on('error', (error) => {
      clearInterval(check);
      reject(error);
    });
  });
}

/** The answer to a body that arrives too slowly (see {@link MIN_BODY_BYTES_PER_SECOND}); the connection closes. */
const TOO_SLOW = {
  error: `request body arriving slower than ${MIN_BODY_BYTES_PER_SECOND / 1024} KiB/s`,
  request_id: null,
} as const;

/**
 * A 413 for an image beyond this server's limits, with the flag that raises the one it went beyond added to its
 * message (the detection handler and the collections API say which, as `limit`; a Lambda's client gets no such
 * advice, the limit being the deployment's). Other answers as they are.
 */
function withLimitFlag(status: number, body: unknown, maxBodyBytes: number): unknown {
  if (status !== 413) return body;
  let parsed: unknown = body;
  try {
    if (typeof body === 'string') parsed = JSON.parse(body);
  } catch {
    return body; // not JSON: not the handler's refusal
  }
  const answer = parsed as { error?: unknown; limit?: unknown; maximum?: unknown } | null;
  if (typeof answer?.error !== 'string' || (answer.limit !== 'bytes' && answer.limit !== 'pixels'))
    return body;
  // At the most `serve` takes there is nothing to raise: for bytes, when the body limit they are carried in is
  // at its maximum already.
  const atMost =
    answer.limit === 'bytes'
      ? maxBodyBytes >= BODY_LIMITS.max
      : typeof answer.maximum === 'number' && answer.maximum >= MAX_DECODE_LIMITS.maxPixels;
  return {
    ...answer,
    error: atMost
      ? `${answer.error} (the most facerec serve takes)`
      : `${answer.error} (or raise the limit: facerec serve --max-image-${answer.limit})`,
  };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

/**
 * Refuses a request before reading its body (busy, stopping): a body of at most `discardUpTo` bytes is read and
 * discarded first, as for a 413. A server that answered and closed the connection while a large frame was still
 * being uploaded left the client with a write error (EPIPE) instead of the 503, and a client cannot tell whether
 * such a frame was taken, so it did not resend it. How long a client may take to send is bounded by the slowest
 * rate a body may arrive at.
 */
async function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string>,
  discardUpTo: number,
): Promise<void> {
  if (!req.complete) await readBody(req, 0, discardUpTo);
  send(res, status, body, headers);
}

/**
 * The embedded default: the pipeline on one machine, no AWS. An HTTP server on localhost takes exactly the
 * Function URL requests (POST a JSON body) and runs the detection handler; an in-process queue with SQS
 * semantics (batches of ≤ 10, visibility timeout, receive counts, dead-letter queue, redelivery) feeds the
 * recognition handler, which reports partial failures like on Lambda; clients collect answers with
 * `GET /responses?prefix=<request id prefix>&max=100&wait=20`, or `?request_id=<id>` for one request exactly (long
 * poll, up to 100 answers; each client gets only the answers of its own request ids, removed once written to it;
 * without `prefix`, any answer). A frame whose `request_id`
 * is still in flight (taken, and not every answer of it arrived yet) is answered 409, never mixed with it.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const host = options.host ?? '127.0.0.1';
  assertTokenWhereNeeded(host, options.token);
  const loopback = LOOPBACK_ADDRESSES.has(host);
  if (options.collections && !options.token) {
    throw new InvalidOptionsError(
      'local runtime',
      'the collections API needs a token (Authorization: Bearer <token>)',
    );
  }
  const consumerCount = options.consumers ?? 1;
  if (!Number.isInteger(consumerCount) || consumerCount < 1 || consumerCount > 64) {
    throw new InvalidOptionsError(
      'local runtime',
      `consumers must be an integer from 1 to 64, got ${consumerCount}`,
    );
  }
  const logger = options.logger ?? silentLogger;
  const { transport, requestQueue, responseQueue, deadLetterQueue } = options;
  const maxInFlight = options.maxInFlight ?? 16;
  const maxQueueDepth = options.maxQueueDepth ?? 256;
  const maxInFlightPixels = options.maxInFlightPixels ?? DEFAULT_MAX_IN_FLIGHT_PIXELS;
  for (const [name, value] of [
    ['maxInFlight', maxInFlight],
    ['maxQueueDepth', maxQueueDepth],
    ['maxInFlightPixels', maxInFlightPixels],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new InvalidOptionsError('local runtime', `${name} must be a positive integer, got ${value}`);
    }
  }
  let inFlight = 0;
  let busy = 0;
  /** Why a frame is refused for load now (503), if it is: frames in flight or faces queued at their limit. */
  const busyWith = (): string | undefined =>
    inFlight >= maxInFlight
      ? 'busy: frames in flight at the limit'
      : transport.depth(requestQueue) + transport.inFlight(requestQueue) >= maxQueueDepth
        ? 'busy: request queue at the limit'
        : undefined;
  /** Faces being added over the collections API (at most one, see the request handler). */
  let adding = 0;
  // Weighted by pixels, first come first served (a large frame is not overtaken by smaller ones), counted in
  // units of PIXEL_UNIT: async-mutex walks every unit of the semaphore's value on each acquire and release
  // (a budget of 50 million single pixels took 71 ms per frame; 5,000 units take microseconds).
  const budgetUnits = Math.max(1, Math.floor(maxInFlightPixels / PIXEL_UNIT));
  const pixelBudget = new Semaphore(budgetUnits);
  /** Set by `drain`: frames are refused from then on. */
  let draining = false;
  const batchSize = options.batchSize ?? 10;
  const maxBodyBytes = options.maxBodyBytes ?? BODY_LIMITS.default;
  // The most of a refused body read and discarded before its answer (see readBody): twice the limit.
  const discardUpTo = 2 * maxBodyBytes;
  // Said to the client, who can send a smaller image; the limit is the server's to raise.
  const tooLargeBody = `body exceeds the server's limit of ${maxBodyBytes} bytes: send a smaller image${maxBodyBytes >= BODY_LIMITS.max ? ' (the most facerec serve takes)' : ' (or raise the limit: facerec serve --max-image-bytes)'}`;
  const abort = new AbortController();
  const recognise = recordHandlerOf(options.recognition);
  const checkHealth = healthChecks(options.checks ?? {});

  /**
   * Long-polls `queue` until the runtime stops, handing each non-empty batch to `handle`, which returns the
   * messages to acknowledge (the others come back after their visibility timeout).
   */
  const drain = async (
    queue: string,
    maxMessages: number,
    handle: (messages: ReceivedMessage[]) => Promise<readonly ReceivedMessage[]>,
    visibility: { visibilityTimeoutSeconds?: number } = {},
  ) => {
    while (!abort.signal.aborted) {
      let messages: ReceivedMessage[];
      try {
        messages = await transport.receive(queue, {
          maxMessages,
          waitTimeSeconds: 20,
          signal: abort.signal,
          ...visibility,
        });
      } catch (error) {
        if (abort.signal.aborted) return;
        logger.error('receive failed', { error: error instanceof Error ? error.message : String(error) });
        continue;
      }
      if (messages.length === 0) continue;
      const done = await handle(messages);
      if (done.length) await transport.acknowledge(queue, done);
    }
  };

  // Recognition consumers: the role of Lambda's SQS event source mapping.
  const consumers = Array.from({ length: consumerCount }, () =>
    drain(requestQueue, batchSize, async (messages) => {
      try {
        const failed = new Set((await recognise(messages)).failedIds);
        return messages.filter((m) => !failed.has(m.id));
      } catch (error) {
        // Like Lambda: a thrown handler fails the whole batch; the messages come back after the timeout.
        logger.error('recognition invocation failed', {
          error: error instanceof Error ? error.message : String(error),
        });
        return [];
      }
    }),
  );

  // The response queue is drained into a mailbox keyed by request id, so each client collects only its own
  // answers (GET /responses?prefix=…); the queue itself would hand any answer to whichever client asked first.
  // An answer is acknowledged on the response queue only once written to its client (or dropped as too old),
  // so with a durable queue a server killed meanwhile still has it after a restart.
  const receipts = new WeakMap<object, string>();
  const registers = options.prometheus ? [options.prometheus] : [];
  const droppedCounter = new Counter({
    name: 'facerec_answers_dropped_total',
    help: 'Answers dropped before a client collected them: too old (expired), or the mailbox full',
    labelNames: ['reason'],
    registers,
  });
  const refusedCounter = new Counter({
    name: 'facerec_requests_refused_total',
    help: 'Requests the local runtime refused itself (busy or stopping, token, Host, route, method, content type, body too large or too slow, request id in flight), by status',
    labelNames: ['status'],
    registers,
  });
  // Every series from the start, at zero: a rate or an absent() rule sees the first refusal.
  for (const status of ['400', '401', '403', '404', '405', '408', '409', '413', '415', '503'])
    refusedCounter.inc({ status }, 0);
  for (const reason of ['expired', 'full']) droppedCounter.inc({ reason }, 0);
  let answersDropped = 0;
  /** Frames whose connection a drain closed before their answer was written. */
  let cutOff = 0;
  const mailbox = new ResponseMailbox({
    // Said, not dropped silently: clients that never collect, or collect too late, lose answers.
    onDropped: ({ expired, full }) => {
      answersDropped += expired + full;
      droppedCounter.inc({ reason: 'expired' }, expired);
      droppedCounter.inc({ reason: 'full' }, full);
      logger.warn('answers dropped uncollected', {
        expired,
        full,
        hint: 'clients collect answers with GET /responses?prefix=<their request id prefix>',
      });
    },
    onRemoved: (body) => {
      requests.collected(body as Record<string, unknown>);
      const receipt = receipts.get(body as object);
      if (receipt === undefined) return;
      transport.acknowledge(responseQueue, [{ receipt }]).catch((error: unknown) => {
        logger.warn('could not acknowledge a delivered answer', { error: String(error) });
      });
    },
  });
  const frameLatency = new Histogram({
    name: 'facerec_frame_latency_seconds',
    help: "From a frame taken (its body read) to its last answer ready for the client: the server's part of the client's latency",
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  const requests = new RequestsInFlight({ onAnswered: (ms) => frameLatency.observe(ms / 1000) });
  // Restarted on a queue file: the frames whose faces or answers it holds are in flight again (before the
  // router below delivers any answer). Messages that are not JSON are the consumers' and router's to report.
  for (const body of [...transport.bodies(requestQueue), ...transport.bodies(responseQueue)]) {
    try {
      requests.restored(JSON.parse(body) as Record<string, unknown>);
    } catch {}
  }
  const router = drain(
    responseQueue,
    10,
    async (messages) => {
      const notJson: ReceivedMessage[] = [];
      for (const m of messages) {
        try {
          const body = JSON.parse(m.body) as { request_id?: unknown };
          receipts.set(body, m.receipt);
          mailbox.add(typeof body.request_id === 'string' ? body.request_id : '', body);
          requests.answered(body);
        } catch {
          logger.warn('dropped a response that is not JSON', { message_id: m.id });
          notJson.push(m);
        }
      }
      return notJson;
    },
    // Held in the mailbox until delivered: they must not come back meanwhile (SQS's longest timeout, 12 h).
    { visibilityTimeoutSeconds: 43_200 },
  );
  const stopped = () => Promise.all([...consumers, router]);
  // What /health says, as gauges read at each scrape.
  new Gauge({
    name: 'facerec_queue_messages',
    help: 'Messages in a queue: visible (waiting), in flight (being recognised), held (answers waiting for their client)',
    labelNames: ['queue', 'state'],
    registers,
    collect() {
      this.set({ queue: 'requests', state: 'visible' }, transport.depth(requestQueue));
      this.set({ queue: 'requests', state: 'in_flight' }, transport.inFlight(requestQueue));
      this.set({ queue: 'responses', state: 'visible' }, transport.depth(responseQueue));
      this.set({ queue: 'responses', state: 'held' }, mailbox.size);
    },
  });
  new Gauge({
    name: 'facerec_frames_in_flight',
    help: 'Frames being read or detected (admission limit: facerec_frames_in_flight_limit)',
    registers,
    collect() {
      this.set(inFlight);
    },
  });
  new Gauge({
    name: 'facerec_frames_in_flight_limit',
    help: 'Most frames read or detected at once (maxInFlight)',
    registers,
  }).set(maxInFlight);
  new Gauge({
    name: 'facerec_pixels_in_flight',
    help: 'Pixels of the frames being decoded and detected (admission limit: facerec_pixels_in_flight_limit)',
    registers,
    collect() {
      this.set((budgetUnits - pixelBudget.getValue()) * PIXEL_UNIT);
    },
  });
  new Gauge({
    name: 'facerec_pixels_in_flight_limit',
    help: 'Most pixels decoded and detected at once (maxInFlightPixels)',
    registers,
  }).set(maxInFlightPixels);
  new Gauge({
    name: 'facerec_queue_depth_limit',
    help: 'Request-queue messages (faces waiting or being recognised) beyond which a frame is answered 503 (maxQueueDepth)',
    registers,
  }).set(maxQueueDepth);

  /**
   * One warning per request the runtime refuses itself (the detection handler logs its own refusals): the
   * status, a fixed reason, the method and route (a known route, never the path sent), the client's address,
   * and the request id where one was read. Nothing the client sent is echoed. At most
   * {@link REFUSALS_LOGGED_PER_SECOND} a second: past that (a client hammering a wrong token, thousands of
   * connections), one line says how many more there were; the counter counts every one.
   */
  let refusalWindow = 0;
  let refusalsInWindow = 0;
  let refusalsNotLogged = 0;
  const flushRefusals = () => {
    if (refusalsNotLogged === 0) return;
    logger.warn('more requests refused, not logged one by one', { count: refusalsNotLogged });
    refusalsNotLogged = 0;
  };
  /** Counts a refusal and logs it, within the limit: `fields` are the request's (no part of what it sent). */
  const logRefusal = (status: number, fields: Record<string, unknown>) => {
    refusedCounter.inc({ status: String(status) });
    const second = Math.floor(performance.now() / 1000);
    if (second !== refusalWindow) {
      flushRefusals();
      refusalWindow = second;
      refusalsInWindow = 0;
    }
    if (++refusalsInWindow > REFUSALS_LOGGED_PER_SECOND) {
      // Said within a second, also when the refusals stop.
      if (refusalsNotLogged++ === 0) setTimeout(flushRefusals, 1000).unref();
      return;
    }
    logger.warn('request refused', { status, ...fields });
  };
  const refused = (
    req: IncomingMessage,
    status: number,
    error: string,
    extra: { request_id?: string } = {},
  ) =>
    logRefusal(status, {
      error,
      method: KNOWN_METHODS.has(req.method ?? '') ? req.method : 'other',
      route: routeOf(req),
      client: req.socket.remoteAddress,
      ...extra,
    });

  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  // Node checks the timeouts at this interval (default 30 s, which could double them).
  const server: Server = createServer(
    // A request without Host reaches the handler (Node would answer a bare 400, unlogged): on loopback it is
    // refused there, logged, as any Host that is not a loopback name.
    { connectionsCheckingInterval: Math.min(requestTimeout, 2_000), requireHostHeader: false },
    async (req, res) => {
      try {
        // The refusals before the body is read close the connection: the body left unread would otherwise keep
        // the request open until its timeout, and a second, unasked-for answer (408) would follow the first.
        const unread = { connection: 'close' };
        // A web page can make a browser post to localhost; only the loopback names are accepted as Host when
        // listening on loopback (DNS rebinding), and only JSON bodies (a cross-site form or text/plain post
        // cannot send those without a CORS preflight, which this server never grants).
        if (loopback && !LOOPBACK_HOST.test(req.headers.host ?? '')) {
          refused(req, 403, 'Host is not a loopback name');
          send(
            res,
            403,
            { error: 'Host must be a loopback name (127.0.0.1, localhost, [::1])', request_id: null },
            unread,
          );
          return;
        }
        // A GET from another site needs no preflight: a page in the browser of someone on this machine could
        // poll /responses and take every answer, unseen by it but gone for the real clients. Browsers say where a
        // request comes from (Sec-Fetch-Site; Origin on posts); programs (curl, fetch in Node) say neither.
        const site = req.headers['sec-fetch-site'];
        if (
          (site !== undefined && site !== 'same-origin' && site !== 'none') ||
          req.headers.origin !== undefined
        ) {
          refused(req, 403, 'request from a web page');
          send(
            res,
            403,
            {
              error:
                'requests from web pages are refused (Sec-Fetch-Site or Origin); send them from a program',
              request_id: null,
            },
            unread,
          );
          return;
        }
        if (options.token && !bearerMatches(req.headers.authorization, options.token)) {
          refused(req, 401, req.headers.authorization ? 'wrong bearer token' : 'no bearer token');
          send(
            res,
            401,
            { error: 'missing or wrong bearer token', request_id: null },
            { 'www-authenticate': 'Bearer', ...unread },
          );
          return;
        }
        // Parsed as a path on this host: relative to a base URL, `//host/` would be read as another host with
        // path `/`, and `//` would not parse at all.
        const target = req.url ?? '/';
        if (!target.startsWith('/')) {
          refused(req, 400, 'malformed request target');
          send(res, 400, { error: 'malformed request target', request_id: null }, unread);
          return;
        }
        const url = new URL(`http://localhost${target}`);
        const collecting =
          req.method === 'GET' &&
          (url.pathname === '/responses' || url.pathname === '/health' || url.pathname === '/metrics');
        // Draining: no connection is kept alive for a next request, which would find the server gone.
        if (draining) res.setHeader('connection', 'close');
        if (draining && !collecting) {
          refused(req, 503, 'stopping');
          const body = options.collections?.handles(url) ? STOPPING_COLLECTIONS : STOPPING;
          await refuse(req, res, 503, body, { 'retry-after': '5', connection: 'close' }, discardUpTo);
          return;
        }
        if (options.collections?.handles(url)) {
          // An added face is decoded, detected and embedded like a frame (a 25 MP photo: seconds, ~500 MB), but
          // is an administrator's path: one add at a time, outside the frames' bounds, so that adds neither
          // take the frames' places nor pile up in memory (8 at once took 1.8 GB).
          if (req.method !== 'POST') {
            await collections(options.collections, req, res, url);
            return;
          }
          if (adding > 0) {
            busy++;
            refused(req, 503, 'busy: a face is being added');
            await refuse(
              req,
              res,
              503,
              { error: 'busy: a face is being added; retry later' },
              { 'retry-after': '1', connection: 'close' },
              discardUpTo,
            );
            return;
          }
          adding++;
          try {
            await collections(options.collections, req, res, url);
          } finally {
            adding--;
          }
          return;
        }
        if (req.method === 'GET' && url.pathname === '/responses') {
          // Up to 100 answers per poll (SQS's 10 would cap a client at 10 per round trip: under load, with the
          // client and the server sharing the cores, answers then piled up faster than one poller collected them).
          const query = responsesQuery(url.searchParams);
          if (typeof query === 'string') {
            refused(req, 400, 'bad /responses query');
            send(res, 400, { error: query, request_id: null });
            return;
          }
          const { match, max, wait } = query;
          // Ends early when the client goes or the runtime stops.
          const entries = await withChildSignal(abort.signal, (signal, stop) => {
            res.on('close', stop);
            return mailbox.take(match, max, wait * 1000, signal);
          });
          // An answer leaves the mailbox only once written to this client; a client gone meanwhile leaves it there.
          res.on('close', () => (res.writableFinished ? mailbox.commit(entries) : mailbox.release(entries)));
          send(res, 200, { messages: entries.map((e) => e.body) });
          return;
        }
        if (req.method === 'GET' && url.pathname === '/metrics' && options.prometheus) {
          const text = await options.prometheus.metrics();
          res.writeHead(200, { 'content-type': options.prometheus.contentType });
          res.end(text);
          return;
        }
        if (req.method === 'GET' && url.pathname === '/health') {
          // 503 while draining or while a check fails (the gallery's store out of reach: faces would wait for
          // it), so that a load balancer's health check takes the server out of rotation; the figures still
          // come with it.
          const checks = await checkHealth();
          const degraded = Object.values(checks).some((c) => !c.ok);
          send(res, draining || degraded ? 503 : 200, {
            status: draining ? 'draining' : degraded ? 'degraded' : 'ok',
            ...(options.checks ? { checks } : {}),
            queues: {
              [requestQueue]: {
                visible: transport.depth(requestQueue),
                inFlight: transport.inFlight(requestQueue),
              },
              [responseQueue]: { visible: transport.depth(responseQueue), held: mailbox.size },
              ...(deadLetterQueue
                ? { [deadLetterQueue]: { visible: transport.depth(deadLetterQueue) } }
                : {}),
            },
            admission: {
              inFlight,
              maxInFlight,
              maxQueueDepth,
              pixelsInFlight: (budgetUnits - pixelBudget.getValue()) * PIXEL_UNIT,
              maxInFlightPixels,
              refused: busy,
            },
          });
          return;
        }
        // A frame declared over the body limit is refused as such before it takes a place, busy or not: a 503
        // had its client resend, up to 8 times, a frame no server of this limit takes, and draining its body
        // (see readBody) in a place let one slow upload refuse every other frame.
        if (req.method === 'POST' && url.pathname === '/' && declaredOver(req, maxBodyBytes)) {
          refused(req, 413, tooLargeBody);
          await refuse(
            req,
            res,
            413,
            { error: tooLargeBody, request_id: null },
            { connection: 'close' },
            discardUpTo,
          );
          return;
        }
        const why = busyWith();
        if (why) {
          busy++;
          refused(req, 503, why);
          await refuse(
            req,
            res,
            503,
            { error: `${why}; retry later`, request_id: null },
            { 'retry-after': '1', connection: 'close' },
            discardUpTo,
          );
          return;
        }
        inFlight++;
        try {
          await detect(req, res, url.pathname);
        } finally {
          inFlight--;
        }
      } catch (error) {
        // A client that hangs up (on its long poll, or in the middle of sending a frame, or timed out sending
        // it) aborts the receive or the read: nothing went wrong on this side.
        const { name, message, code } = error as { name?: string; message?: string; code?: string };
        if (
          (res.destroyed || req.destroyed) &&
          (name === 'AbortError' || message === 'aborted' || code === 'ECONNRESET')
        ) {
          logger.debug('client disconnected', { route: routeOf(req) });
          return;
        }
        logger.error('local runtime error', {
          error: error instanceof Error ? error.message : String(error),
        });
        if (!res.headersSent) send(res, 500, { error: 'internal error', request_id: null });
      }
    },
  );

  /** A collections API request: a JSON body for POST, read within the body limit. */
  async function collections(api: CollectionsApi, req: IncomingMessage, res: ServerResponse, url: URL) {
    let body: Buffer | undefined;
    if (req.method === 'POST') {
      const read = await readBody(req, maxBodyBytes);
      if (read === 'too-slow') {
        refused(req, 408, 'body too slow');
        send(res, 408, { error: TOO_SLOW.error }, { connection: 'close' });
        return;
      }
      if (read === 'too-large') {
        refused(req, 413, tooLargeBody);
        send(res, 413, { error: tooLargeBody }, { connection: 'close' });
        return;
      }
      const unsupported = jsonBodyIssue(req);
      if (unsupported) {
        refused(req, 415, unsupported.log);
        send(res, 415, { error: unsupported.error });
        return;
      }
      body = read;
    }
    const answer = await api.handle({ method: req.method ?? 'GET', url, ...(body ? { body } : {}) });
    // The API's own message may quote what was sent (a name): the log says the status only.
    if (answer.status >= 400) refused(req, answer.status, 'refused by the collections API');
    send(res, answer.status, withLimitFlag(answer.status, answer.body, maxBodyBytes), answer.headers);
  }

  /** A frame through the detection handler, as a Function URL would deliver it. */
  async function detect(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    // Said before the content type (which a GET has none of), as the detection handler says it.
    if (
      pathname === '/responses' ||
      pathname === '/health' ||
      (pathname === '/metrics' && options.prometheus)
    ) {
      req.resume();
      refused(req, 405, 'method not allowed');
      send(
        res,
        405,
        { error: `method ${req.method} not allowed on ${pathname}; GET it`, request_id: null },
        { allow: 'GET' },
      );
      return;
    }
    if (pathname !== '/') {
      req.resume();
      refused(req, 404, 'no such route');
      const hint = pathname.startsWith('/collections/')
        ? ' (the collections API needs a token: --token)'
        : '';
      send(res, 404, {
        error: `no such ${req.method} route: POST frames to /, GET /responses${options.prometheus ? ', /health or /metrics' : ' or /health'}${hint}`,
        request_id: null,
      });
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      refused(req, 405, 'method not allowed');
      send(
        res,
        405,
        { error: `method ${req.method} not allowed; POST a JSON body`, request_id: null },
        { allow: 'POST' },
      );
      return;
    }
    const body = await readBody(req, maxBodyBytes);
    if (body === 'too-slow') {
      refused(req, 408, 'body too slow');
      send(res, 408, TOO_SLOW, { connection: 'close' });
      return;
    }
    if (body === 'too-large') {
      refused(req, 413, tooLargeBody);
      send(res, 413, { error: tooLargeBody, request_id: null }, { connection: 'close' });
      return;
    }
    const unsupported = jsonBodyIssue(req);
    if (unsupported) {
      refused(req, 415, unsupported.log);
      send(res, 415, { error: unsupported.error, request_id: null });
      return;
    }
    const text = body.toString('utf8');
    // One frame per request id at a time: a second one would have its answers mixed with the first's.
    const { requestId, pixels } = await frameRequestFields(
      text,
      options.maxImagePixels ?? DEFAULT_DECODE_LIMITS.maxPixels,
    );
    if (requestId !== undefined && !requests.begin(requestId)) {
      refused(req, 409, 'request_id already in flight', { request_id: requestId });
      send(res, 409, {
        error:
          'request_id is already in flight (sent, and not every answer made yet; after a restart, not every answer collected yet): use a new request_id per frame',
        request_id: requestId,
      });
      return;
    }
    const event: FunctionUrlEvent = {
      body: text,
      isBase64Encoded: false,
      headers: Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]),
      ),
      requestContext: {
        http: {
          method: req.method ?? 'GET',
          ...(req.socket.remoteAddress ? { sourceIp: req.socket.remoteAddress } : {}),
        },
      },
    };
    let result: FunctionUrlResult = { statusCode: 500, headers: {}, body: '' };
    const weight = Math.min(Math.ceil(pixels / PIXEL_UNIT), budgetUnits);
    let releasePixels = () => {};
    if (weight > 0) {
      try {
        [, releasePixels] = await pixelBudget.acquire(weight);
      } catch {
        // The runtime stopped before this frame's turn (close cancels the waiting frames): nothing of it was
        // detected or queued, so the client is told to send it again.
        if (requestId !== undefined) requests.detected(requestId, { statusCode: 503, body: '' });
        refused(req, 503, 'stopping', requestId === undefined ? {} : { request_id: requestId });
        send(res, 503, STOPPING, { 'retry-after': '5', connection: 'close' });
        return;
      }
    }
    try {
      result = await options.detection(event);
    } finally {
      releasePixels();
      if (requestId !== undefined) requests.detected(requestId, result);
    }
    // The stop closed the connection while the frame was detected: its client got no answer (and should send it
    // again), though its faces may have been queued. Counted for the stop's report.
    if (draining && res.destroyed) cutOff++;
    send(res, result.statusCode, withLimitFlag(result.statusCode, result.body, maxBodyBytes), result.headers);
  }
  // Requests Node gives up on before any handler runs: headers or the whole request not in within their
  // timeouts (408), a malformed request (400), headers too large (431). Node answers them itself, without a body
  // and unseen (not logged, not counted); here they are refused as the server's own refusals are, the 408 with a
  // JSON body. Nothing is written once a response has begun (as Node does).
  // `Expect: 100-continue`: Node would answer 100 itself, asking for a body the server then refuses. One declared
  // over the limit is refused at once instead (413), so the client never sends it.
  // So is a frame a stopping or busy server would refuse once sent (503), rather than after an upload for nothing.
  server.on('checkContinue', (req, res) => {
    if (declaredOver(req, maxBodyBytes)) {
      refused(req, 413, tooLargeBody);
      send(res, 413, { error: tooLargeBody, request_id: null }, { connection: 'close' });
      return;
    }
    const frame = req.method === 'POST' && (req.url ?? '/').split('?')[0] === '/';
    if (frame && draining) {
      refused(req, 503, 'stopping');
      send(res, 503, STOPPING, { 'retry-after': '5', connection: 'close' });
      return;
    }
    const why = frame ? busyWith() : undefined;
    if (why) {
      busy++;
      refused(req, 503, why);
      send(
        res,
        503,
        { error: `${why}; retry later`, request_id: null },
        { 'retry-after': '1', connection: 'close' },
      );
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // The client closed or reset its connection before its request was complete: nothing malformed to refuse
    // (it was counted and logged as a 400), and no one to answer.
    if (error.code === 'HPE_INVALID_EOF_STATE' || error.code === 'ECONNRESET') {
      logger.info('connection closed by the client before its request was complete', {
        client: (socket as Socket).remoteAddress,
      });
      socket.destroy();
      return;
    }
    const started = (socket as { _httpMessage?: ServerResponse })._httpMessage?.headersSent === true;
    if (socket.writable && !started) {
      const [status, reason] =
        error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout']
          : error.code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'Request Header Fields Too Large']
            : [400, 'Bad Request'];
      const message =
        status === 408
          ? `request not received within ${requestTimeout / 1000} s (its headers within ${Math.min(10_000, requestTimeout) / 1000} s)`
          : status === 431
            ? 'request headers too large'
            : 'malformed HTTP request';
      // Within the same limit as every refusal: malformed requests and stalled headers need no token.
      logRefusal(status, { error: message, client: (socket as Socket).remoteAddress });
      const body = JSON.stringify({ error: message, request_id: null });
      socket.write(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A client that sends a frame slowly holds one of the maxInFlight places: it gets requestTimeoutMs for
      // the whole request, then 408, instead of Node's 5 minutes.
      server.headersTimeout = Math.min(10_000, requestTimeout);
      server.requestTimeout = requestTimeout;
      // Every header is kept (Node keeps the first 2,000 keys and values and drops the rest silently, the
      // Authorization header included); their total size stays bounded by Node's 16 KiB header limit (431).
      server.maxHeadersCount = 0;
      server.listen(options.port ?? 3000, host, () => resolve());
    });
  } catch (error) {
    // Port taken (EADDRINUSE) or not allowed: stop the consumers, or they would keep the process alive.
    abort.abort();
    await stopped();
    throw error;
  }
  const address = server.address() as AddressInfo;
  // `localhost` is taken for loopback by its name: a hosts file that maps it elsewhere would expose a server that
  // has no token. What was bound decides.
  if (!options.token && !/^(127\.|::1$|::ffff:127\.)/.test(address.address)) {
    abort.abort();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await stopped();
    throw new InvalidOptionsError(
      'local runtime',
      `${host} resolved to ${address.address}, which is not loopback: listening there needs a token (Authorization: Bearer <token>)`,
    );
  }
  // Listening on every interface: the URL this machine reaches it at (0.0.0.0 is not an address to send to).
  const reachable =
    address.address === '0.0.0.0'
      ? '127.0.0.1'
      : address.address === '::'
        ? '[::1]'
        : address.family === 'IPv6'
          ? `[${address.address}]`
          : address.address;
  const url = `http://${reachable}:${address.port}`;
  logger.info('local runtime listening', { url, request_queue: requestQueue, response_queue: responseQueue });

  const backlog = (): LocalRuntimeBacklog => ({
    detecting: inFlight,
    recognising: transport.depth(requestQueue) + transport.inFlight(requestQueue),
    // Answers routed to the mailbox stay in flight on the response queue until delivered; the rest wait there.
    uncollected: transport.depth(responseQueue) + mailbox.size,
    adding,
  });
  let closing: Promise<void> | undefined;
  /**
   * Stops listening and ends the long polls; requests still being answered get up to `graceMs` (a drain's 503s),
   * then every connection is closed. A client that had sent a request on a connection closed under it cannot
   * tell whether it was taken; one refused a connection knows it was not.
   */
  const close = (graceMs = 0) => {
    closing ??= (async () => {
      abort.abort();
      // Frames waiting for the pixel budget get 503 (they were neither detected nor queued), written before
      // the connections close.
      pixelBudget.cancel();
      await new Promise((r) => setImmediate(r));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (graceMs > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
        clearTimeout(timer);
      }
      server.closeAllConnections();
      await closed;
      await stopped();
    })();
    return closing;
  };

  return {
    url,
    backlog,
    async drain(drainOptions = {}) {
      draining = true;
      const started = performance.now();
      const deadline = started + (drainOptions.timeoutMs ?? 10_000);
      // A face being added over the collections API is waited for too: cut off, its client could not tell
      // whether it landed.
      const empty = (b: LocalRuntimeBacklog) => b.detecting + b.recognising + b.uncollected + b.adding === 0;
      while (!empty(backlog()) && performance.now() < deadline && !drainOptions.signal?.aborted) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await close(1_000);
      // Adds still running once every connection was closed (after the second the close gives them): their
      // clients got no answer. One that answered within that second is not cut off.
      const addsCutOff = adding;
      // Detections still running when the connections closed go on to their end (their faces queued, or not):
      // waited for, briefly, so that what is left is counted after them (counted before, the report missed what
      // they and the last second's answers left) and nothing writes to a queue being closed. Not after a second
      // Ctrl-C.
      const settleBy = performance.now() + (drainOptions.signal?.aborted ? 0 : DETECTIONS_SETTLE_MS);
      while (inFlight > 0 && performance.now() < settleBy && !drainOptions.signal?.aborted) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const left = backlog();
      return {
        drained: empty(left) && cutOff === 0 && addsCutOff === 0,
        left,
        cutOff,
        answersDropped,
        addsCutOff,
        waitedMs: performance.now() - started,
      };
    },
    close: () => close(),
  };
}
