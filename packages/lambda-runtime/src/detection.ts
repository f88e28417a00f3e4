import { randomUUID } from 'node:crypto';
import {
  type CropPolicy,
  type DecodeLimits,
  decodeImage,
  encodeJpeg,
  type FaceDetector,
  FacerecInputError,
  ImageTooLargeError,
  InvalidImageError,
  MessageTooLargeError,
  type OutboundMessage,
  PIPELINE_METRICS,
  type Transport,
  UnsupportedImageFormatError,
} from '@facerec/framework';
import { BODY_LIMITS } from '@facerec/framework/registry';
import { type PipelineLogger, silentLogger, since } from './logger.js';
import {
  type DetectionRequest,
  detectionRequestSchema,
  type FaceMessage,
  messageBody,
  NO_FACE,
  type ResponseMessage,
  requestIssues,
  requestJsonIssue,
} from './messages.js';
import { guardedMetrics, type PipelineMetrics } from './metrics.js';
import { publishOptionsBefore, type RecordBatchContext } from './sqs-batch.js';

/** The part of a Lambda Function URL event (payload format 2.0) the handler reads. */
export interface FunctionUrlEvent {
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly requestContext?: {
    readonly http?: { readonly method?: string; readonly sourceIp?: string };
    readonly requestId?: string;
  };
}

/** A Function URL answer. */
export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Answers one Function URL request. `invocation.deadline` (on Lambda: now plus the context's remaining time)
 * bounds publishing, so that a queue out of reach is answered 503 before the invocation times out.
 */
export type DetectionHandler = (
  event: FunctionUrlEvent,
  invocation?: RecordBatchContext,
) => Promise<FunctionUrlResult>;

/** Options of {@link createDetectionHandler}. */
export interface DetectionHandlerOptions {
  /** Finds faces; any `FaceDetector` (only `detectFaces` is used). */
  readonly detector: Pick<FaceDetector, 'detectFaces'>;
  /**
   * How faces are cut out: the recognition embedder's `preprocessing.crop` (from the model registry, so the
   * detection function need not load the embedder).
   */
  readonly crop: CropPolicy;
  readonly transport: Transport;
  /** Where face messages go (an SQS queue URL, or a local queue name). */
  readonly requestQueue: string;
  /** Where the "no face" answer goes (and, through recognition, every answer) when a request names no `reply_to`. */
  readonly responseQueue: string;
  /**
   * The reply queues a request may name in `reply_to` (`FACEREC_REPLY_QUEUES`): each client of a shared
   * deployment polls its own, so no client receives, and deletes, another's answers. A `reply_to` outside this
   * list is answered 400. Default: none (every answer goes to `responseQueue`).
   */
  readonly replyQueues?: readonly string[];
  /** Largest request body accepted, in bytes. Default 6 MiB (the Lambda synchronous payload limit). */
  readonly maxBodyBytes?: number;
  /** Image limits for `decodeImage`. Default: its defaults (10 MiB, 25 megapixels). */
  readonly decodeLimits?: DecodeLimits;
  /** At most this many faces per frame are sent on, largest first. Default 32. */
  readonly maxFaces?: number;
  /** JPEG quality of the crops on the queue. Default 90. */
  readonly cropQuality?: number;
  readonly logger?: PipelineLogger;
  /** Counts frames by outcome, faces and latency (`PIPELINE_METRICS.detection`). Default: none. */
  readonly metrics?: PipelineMetrics;
}

const METRIC = PIPELINE_METRICS.detection;

const json = (statusCode: number, body: unknown): FunctionUrlResult => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** base64, standard or URL-safe alphabet, with ASCII whitespace anywhere (line breaks, spaces) and at most two `=` last. */
const BASE64 = /^[A-Za-z0-9+/_\-\t\n\v\f\r ]*(?:=[\t\n\v\f\r ]*){0,2}$/;
const WHITESPACE = /[\t\n\v\f\r ]/;

/**
 * The characters of base64 text that are not whitespace, and how many of them are `=`. Counted in place: a copy
 * without the whitespace (`replace(/\s+/g, '')`) held the event loop for 0.3 s on a 6 MB body with a space after
 * every character.
 */
/** Bytes that base64 of these characters decodes to: 3 per 4 characters, less the padding. */
const decodedLength = ({ characters, padding }: { characters: number; padding: number }) =>
  Math.max(0, Math.floor((characters * 3) / 4) - padding);

function base64Characters(text: string): { characters: number; padding: number } {
  if (!WHITESPACE.test(text)) {
    return { characters: text.length, padding: text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0 };
  }
  let characters = 0;
  let padding = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x3d) padding++;
    if (code !== 0x20 && (code < 0x09 || code > 0x0d)) characters++;
  }
  return { characters, padding };
}

/** An error answered with a 4xx status. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status for an input error (413 too large, 415 format, 422 undecodable, 400 other), else undefined. */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof RequestError) return error.status;
  // The deployment's (an embedder's crops too large for the queue), not the frame's: a server error.
  if (MessageTooLargeError.isInstance(error)) return undefined;
  if (ImageTooLargeError.isInstance(error)) return 413;
  if (UnsupportedImageFormatError.isInstance(error)) return 415;
  if (InvalidImageError.isInstance(error)) return 422;
  if (FacerecInputError.isInstance(error)) return 400;
  return undefined;
}

function parseBody(
  event: FunctionUrlEvent,
  maxBodyBytes: number,
): { request?: DetectionRequest; requestId: string | null } {
  const method = event.requestContext?.http?.method;
  if (method && method !== 'POST') {
    // Named only when it is a method's name: a hand-made event could carry anything, and nothing is reflected.
    const named = /^[A-Z]{1,16}$/.test(method) ? `method ${method}` : 'that method';
    throw new RequestError(405, `${named} not allowed; POST a JSON body`);
  }
  const raw = event.body ?? '';
  // A Function URL always sends a string; anything else is a hand-made event (said without repeating it).
  if (typeof raw !== 'string') throw new RequestError(400, `body must be a string, not ${typeof raw}`);
  if (raw.length === 0) throw new RequestError(400, 'empty body; POST {"content", "request_id", "filename"}');
  // Only `true` (what a Function URL sends for a binary content type); a hand-made "false" is not true.
  const base64 = event.isBase64Encoded === true;
  // The encoded length bounds the decoded size, so the check needs no decoding.
  const encoded = base64 ? base64Characters(raw) : undefined;
  const bodyBytes = encoded ? decodedLength(encoded) : Buffer.byteLength(raw);
  if (bodyBytes > maxBodyBytes) {
    throw new RequestError(413, `body of ${bodyBytes} bytes exceeds the limit of ${maxBodyBytes} bytes`);
  }
  // Node decodes any text as base64 without complaint: JSON sent so marked would be refused for what the
  // garbage decodes to.
  if (encoded && (!BASE64.test(raw) || encoded.characters % 4 === 1)) {
    throw new RequestError(
      400,
      'the body is marked base64-encoded (isBase64Encoded) but is not base64: send the JSON as it is, with content-type application/json',
    );
  }
  const text = base64 ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  const shape = requestJsonIssue(text);
  if (shape) throw new RequestError(400, shape);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RequestError(400, 'body is not valid JSON');
  }
  // Echo the request id in errors only when it is well-formed: never reflect arbitrary input back.
  const candidate = (parsed as { request_id?: unknown } | null)?.request_id;
  const requestId = detectionRequestSchema.shape.request_id.safeParse(candidate).success
    ? (candidate as string)
    : null;
  const result = detectionRequestSchema.safeParse(parsed);
  if (!result.success) {
    const error = new RequestError(
      400,
      `invalid request: ${requestIssues(result.error, detectionRequestSchema)}`,
    );
    throw Object.assign(error, { requestId });
  }
  return { request: result.data, requestId: result.data.request_id };
}

function decodeContent(content: string, maxBytes: number): Buffer {
  const valid = BASE64.test(content);
  const { characters, padding } = valid ? base64Characters(content) : { characters: 0, padding: 0 };
  if (!valid || characters % 4 === 1) {
    // The two usual slips, said (the value itself is never echoed).
    const start = content.trimStart();
    if (/^data:/i.test(start))
      throw new RequestError(400, 'content is a data: URL, not base64: send only what follows its comma');
    if (/^b['"]/.test(start)) {
      throw new RequestError(
        400,
        "content is not valid base64: it looks like Python's str() of bytes (b'…'); send base64.b64encode(data).decode('ascii')",
      );
    }
    throw new RequestError(400, 'content is not valid base64');
  }
  const expected = decodedLength({ characters, padding });
  if (expected > maxBytes) throw new ImageTooLargeError('bytes', expected, maxBytes);
  // Node's base64 decoder skips the whitespace and takes the URL-safe alphabet too.
  return Buffer.from(content, 'base64');
}

/**
 * The detection Lambda handler, for Function URL events: validates the request, decodes the image within its
 * limits, finds every face, and sends one request-queue message per face (up to `maxFaces`, largest first),
 * each with its crop as base64 JPEG. A frame without faces sends exactly one `"no face"` answer to the
 * response queue, so every request gets an answer.
 *
 * A request may name `reply_to`, one of `replyQueues`: its "no face" answer goes there, and its face messages
 * carry it, so that recognition answers there too. Several clients share one deployment that way, each polling
 * its own reply queue; a request without `reply_to` is answered on `responseQueue`, as before.
 *
 * Every accepted frame gets a new `frame_id` (a UUID), carried by its face messages and its answers: frames
 * sent with the same `request_id` are answered apart, each answer tagged with its frame.
 *
 * Answers: 200 `{ request_id, frame_id, filename, faces_found, faces }`; 400 bad JSON or fields; 405 not POST; 413 body or image
 * too large; 415 unsupported image format; 422 undecodable image — each `{ error, request_id }`. 503 when
 * publishing failed after the transport's retries, `{ error, request_id, frame_id, queued }`: `queued` faces
 * went out before the failure and are answered under that `frame_id`; 500 for anything unexpected.
 *
 * @example
 * export const handler = createDetectionHandler({
 *   detector,
 *   transport,
 *   requestQueue,
 *   responseQueue,
 *   crop: embedder.preprocessing.crop, // as the recognition side's embedder takes its faces
 * });
 */
export function createDetectionHandler(options: DetectionHandlerOptions): DetectionHandler {
  const logger = options.logger ?? silentLogger;
  const metrics = guardedMetrics(options.metrics, logger);
  const maxBodyBytes = options.maxBodyBytes ?? BODY_LIMITS.default;
  const maxFaces = options.maxFaces ?? 32;
  const cropQuality = options.cropQuality ?? 90;
  const maxImageBytes = options.decodeLimits?.maxBytes ?? 10 * 1024 * 1024;
  const replyQueues = new Set(options.replyQueues ?? []);
  // Every face message says how its crop was cut, so a recognition function running another embedder refuses it.
  const { size, shape, margin } = options.crop;
  const cropPolicy: FaceMessage['crop_policy'] = {
    size: { width: size.width, height: size.height },
    shape,
    margin,
  };

  return async (event, invocation) => {
    const started = performance.now();
    // On Lambda, publishing stops this long before the invocation's deadline (SQS retries would otherwise run
    // past it, and the client get Lambda's bare 502 instead of this handler's 503, with nothing logged).
    let publishOptions: ReturnType<typeof publishOptionsBefore> = {};
    const publishing = () => {
      publishOptions = publishOptionsBefore(invocation?.deadline);
      return publishOptions;
    };
    let requestId: string | null = null;
    let stage = 'parse';
    // Known once the frame is accepted and its faces found: a partly queued frame's 503 names them.
    let frameId: string | undefined;
    let faceCount = 0;
    try {
      const parsed = parseBody(event, maxBodyBytes);
      requestId = parsed.requestId;
      const request = parsed.request!;
      // Checked before any decoding; the refusal never echoes the value (a queue URL is not secret, but the
      // handler reflects no input).
      if (request.reply_to !== undefined && !replyQueues.has(request.reply_to)) {
        throw new RequestError(
          400,
          replyQueues.size === 0
            ? 'reply_to is not allowed: this deployment has no reply queues (on Lambda, FACEREC_REPLY_QUEUES lists them; facerec serve has none: its clients collect their answers with GET /responses); omit it to be answered on the response queue'
            : `reply_to is not one of the ${replyQueues.size} reply queues this deployment allows (FACEREC_REPLY_QUEUES)`,
        );
      }
      const replyQueue = request.reply_to ?? options.responseQueue;
      // This frame's identity: the idempotency key and every answer carry it, so that two frames sent with
      // one request_id (a client retrying with new content, or two clients choosing the same id) stay apart.
      frameId = randomUUID();
      const timings: Record<string, number> = {};

      stage = 'decode';
      let t = performance.now();
      const image = await decodeImage(decodeContent(request.content, maxImageBytes), options.decodeLimits);
      timings.decode_ms = since(t);

      stage = 'detect';
      t = performance.now();
      const [found] = await options.detector.detectFaces([image], { crop: options.crop });
      timings.detect_ms = since(t);
      const facesFound = found!.faces.length;
      const faces = found!.faces.slice(0, maxFaces);
      faceCount = faces.length;
      const crops = found!.crops.slice(0, maxFaces);

      stage = 'publish';
      t = performance.now();
      if (faces.length === 0) {
        const answer: ResponseMessage = {
          request_id: request.request_id,
          frame_id: frameId,
          filename: request.filename,
          face_index: null,
          face_count: 0,
          result: NO_FACE,
          distance: null,
          box: null,
        };
        await options.transport.publish(
          replyQueue,
          [{ id: `${frameId}-none`, body: messageBody(answer) }],
          publishing(),
        );
      } else {
        const messages: OutboundMessage[] = [];
        for (const [i, face] of faces.entries()) {
          const body: FaceMessage = {
            request_id: request.request_id,
            frame_id: frameId,
            filename: request.filename,
            face_index: i,
            face_count: faces.length,
            box: face.box.map((v) => Math.round(v * 100) / 100) as FaceMessage['box'],
            score: face.score,
            crop: Buffer.from(await encodeJpeg(crops[i]!.image, cropQuality)).toString('base64'),
            crop_policy: cropPolicy,
            ...(request.reply_to === undefined ? {} : { reply_to: request.reply_to }),
          };
          messages.push({ id: `${frameId}-${i}`, body: messageBody(body) });
        }
        await options.transport.publish(options.requestQueue, messages, publishing());
      }
      timings.publish_ms = since(t);
      logger.info('frame detected', {
        request_id: request.request_id,
        ...(request.reply_to === undefined ? {} : { reply_to: request.reply_to }),
        frame_id: frameId,
        faces: faces.length,
        faces_found: facesFound,
        width: image.width,
        height: image.height,
        ...timings,
        total_ms: since(started),
      });
      if (facesFound > faces.length) {
        // A warning, not only the info line's count (which quiet logs hide): faces were found and not answered.
        logger.warn('faces left out: more in the frame than the maximum sent on per frame', {
          request_id: request.request_id,
          frame_id: frameId,
          faces_found: facesFound,
          max_faces: maxFaces,
        });
      }
      metrics.add(METRIC.framesAccepted, 'Count', 1);
      metrics.add(METRIC.facesDetected, 'Count', faces.length);
      metrics.add(METRIC.frameLatency, 'Milliseconds', since(started));
      return json(200, {
        request_id: request.request_id,
        frame_id: frameId,
        filename: request.filename,
        faces: faces.length,
        // All that were found, so a client can tell when the smallest were left out (over maxFaces).
        faces_found: facesFound,
      });
    } catch (error) {
      requestId ??= (error as { requestId?: string | null }).requestId ?? null;
      const status = statusOf(error);
      const message = error instanceof Error ? error.message : String(error);
      metrics.add(status === undefined ? METRIC.framesFailed : METRIC.framesRefused, 'Count', 1);
      if (status !== undefined) {
        // As the local runtime's own refusals: the client's address, to find who sends bad frames.
        logger.warn('request refused', {
          request_id: requestId,
          status,
          error: message,
          client: event.requestContext?.http?.sourceIp,
        });
        // Which limit an image went beyond, for a client (or a server in front) to act on without parsing text.
        const limit = ImageTooLargeError.isInstance(error)
          ? { limit: error.limit, maximum: error.maximum }
          : {};
        return json(status, { error: message, request_id: requestId, ...limit });
      }
      if (MessageTooLargeError.isInstance(error)) {
        // Retrying would meet the same limit: no 503. Said as the deployment's problem, with the sizes.
        logger.error('face message over the queue limit', {
          request_id: requestId,
          frame_id: frameId,
          size_bytes: error.sizeBytes,
          limit_bytes: error.limitBytes,
        });
        return json(500, {
          error:
            "a face's message is over the queue's size limit (the deployment's crops are too large for its " +
            'queue, not a fault of the frame); nothing was queued',
          request_id: requestId,
          frame_id: frameId ?? null,
        });
      }
      if (stage === 'publish') {
        // A transport that sent some messages before failing says which (`publishedIds`, as the SQS one does):
        // those faces are answered under this frame_id, so the client is told it, and that a retry is a new frame.
        const published = (error as { publishedIds?: unknown }).publishedIds;
        const queued = Array.isArray(published) ? published.length : 0;
        // Stopped by the invocation's deadline (before a first try, or between retries): said as that.
        const deadline = publishOptions.signal?.aborted === true;
        logger.error(
          deadline ? "publishing stopped: the invocation's deadline" : 'publishing failed after retries',
          {
            request_id: requestId,
            frame_id: frameId,
            faces: faceCount,
            queued,
            error: message,
          },
        );
        return json(503, {
          error:
            queued > 0
              ? `queued ${queued} of ${faceCount} faces before the queue refused the rest: those are answered under this ` +
                'frame_id; retry later (a retry is a new frame, answered in full)'
              : faceCount === 0
                ? 'could not queue the "no face" answer; retry later'
                : 'could not queue the faces; retry later',
          request_id: requestId,
          frame_id: frameId ?? null,
          queued,
        });
      }
      logger.error('internal error', { request_id: requestId, stage, error: message });
      return json(500, { error: 'internal error', request_id: requestId });
    }
  };
}
