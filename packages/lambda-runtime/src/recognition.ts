import {
  type CropPolicy,
  decodeImage,
  describeCropPolicy,
  type FaceEmbedder,
  FacerecError,
  fitFaceCrop,
  type Gallery,
  type GalleryMatch,
  type OutboundMessage,
  PIPELINE_METRICS,
  type RgbImage,
  sameCropPolicy,
  type Transport,
  UNKNOWN_IDENTITY,
} from '@facerec/framework';
import {
  type IdempotencyStore,
  IdempotencyStoreUnavailableError,
  InMemoryIdempotencyStore,
} from './idempotency.js';
import { type PipelineLogger, silentLogger, since } from './logger.js';
import {
  type FaceMessage,
  faceMessageSchema,
  messageBody,
  type ResponseMessage,
  requestIssues,
} from './messages.js';
import { guardedMetrics, type PipelineMetrics } from './metrics.js';
import {
  publishOptionsBefore,
  type QueueRecord,
  type RecordBatchHandler,
  type SqsBatchHandler,
  sqsBatchHandler,
} from './sqs-batch.js';

export type { SqsBatchResponse, SqsEvent, SqsRecord } from './sqs-batch.js';

/** Options of {@link createRecognitionHandler} and {@link createRecognitionRecordHandler}. */
export interface RecognitionHandlerOptions {
  readonly embedder: FaceEmbedder;
  readonly gallery: Gallery;
  /**
   * Distance above which a face is `unknown`, instead of the gallery's own threshold. A function is asked for
   * every batch (`undefined`: the gallery's own), before its match and again after it: a store that picked up
   * a new version during that match may call for another threshold (a gallery calibrated since), and the batch
   * is then matched again at that one.
   */
  readonly threshold?: number | (() => number | undefined) | undefined;
  readonly transport: Transport;
  /** Where the answers go, unless a face message names its client's `reply_to`. */
  readonly responseQueue: string;
  /**
   * The reply queues a face message may name in `reply_to` (`FACEREC_REPLY_QUEUES`, as the detection handler
   * checked): a message naming another fails (and reaches the dead-letter queue), so nothing on the request
   * queue can direct answers elsewhere. Default: none.
   */
  readonly replyQueues?: readonly string[];
  /** Default: an {@link InMemoryIdempotencyStore}. */
  readonly idempotency?: IdempotencyStore;
  /**
   * How long a claim on a face stays "in progress" when the invocation has no deadline (on Lambda the claim
   * lasts until the invocation's deadline, as Powertools does it): past it, the attempt counts as dead and a
   * redelivery processes the face again. Default 300000 (5 minutes): longer than any batch takes.
   */
  readonly inProgressExpiryMs?: number;
  /**
   * Turns a decoded crop into the embedder's input. Default: `fitFaceCrop` with the embedder's crop policy (a
   * crop of another size stretched for `box`, padded to a centred square for the square policies, then resized).
   */
  readonly prepare?: (crop: RgbImage, embedder: FaceEmbedder) => RgbImage;
  /** Largest crop accepted from the queue, in bytes and pixels. Default 1 MiB, 1 megapixel. */
  readonly cropLimits?: { maxBytes?: number; maxPixels?: number };
  readonly logger?: PipelineLogger;
  /**
   * Counts faces by outcome and their latency (`PIPELINE_METRICS.recognition`; `AnswerLatency` for records
   * that say when they were queued, as SQS's do). Default: none.
   */
  readonly metrics?: PipelineMetrics;
}

const METRIC = PIPELINE_METRICS.recognition;

/** A gallery store that answers, but whose gallery cannot be matched against: what the batch's log line says. */
const GALLERY_UNUSABLE: ReadonlyMap<string, string> = new Map([
  ['GALLERY_NOT_FOUND', 'gallery gone from its store; the batch is delivered again later'],
  ['EMBEDDER_MISMATCH', 'gallery made again for another embedder; the batch is delivered again later'],
]);

interface Pending {
  record: QueueRecord;
  message: FaceMessage;
  key: string;
  /** The claim this attempt holds on `key`. */
  token: string;
  face: RgbImage;
  embedding?: Float32Array;
  /** The answer, once made. */
  answer?: string;
  done?: boolean;
}

/** What the logs say of a face: its request, frame and index (never the crop). */
function faceFields(message: FaceMessage) {
  return { request_id: message.request_id, frame_id: message.frame_id, face_index: message.face_index };
}

/** The idempotency key of a face: its frame (unique per accepted frame) and its index in that frame. */
export function idempotencyKey(message: Pick<FaceMessage, 'request_id' | 'frame_id' | 'face_index'>): string {
  return `${message.request_id}:${message.frame_id}:${message.face_index}`;
}

/**
 * The recognition handler for SQS events from the request queue, as Lambda runs it:
 * {@link createRecognitionRecordHandler} behind the SQS adapter ({@link sqsBatchHandler}), so failed records
 * come back as `batchItemFailures` (enable `ReportBatchItemFailures` on the event source mapping). Its
 * `handleRecords` is the transport-neutral handler, which the local runtime feeds directly.
 */
export function createRecognitionHandler(options: RecognitionHandlerOptions): SqsBatchHandler {
  return sqsBatchHandler(createRecognitionRecordHandler(options));
}

/**
 * The recognition handler for a batch of queue records, whatever transport delivered them: decodes every
 * face of the batch, embeds them together, matches them against the gallery and sends one answer per face
 * (`{ request_id, filename, face_index, face_count, result, distance, box }`, `result` being the identity or
 * `"unknown"`) to the face's `reply_to` queue (one of `replyQueues`), else the response queue.
 *
 * Partial failures are reported per record in `failedIds`; no exception escapes the batch. Every face is
 * claimed in the idempotency store first (key `request_id:frame_id:face_index`), with Powertools' semantics:
 * a face already answered is acknowledged without a second answer; a face whose claim is held by an attempt
 * still in progress (a redelivery that overtook a slow attempt) is reported failed, so the queue delivers it
 * again later, and never acknowledged (that attempt may still fail); a face whose attempt failed or expired is
 * processed again. A record that repeats a face of its own batch shares that face's outcome.
 */
export function createRecognitionRecordHandler(options: RecognitionHandlerOptions): RecordBatchHandler {
  const logger = options.logger ?? silentLogger;
  const metrics = guardedMetrics(options.metrics, logger);
  const idempotency = options.idempotency ?? new InMemoryIdempotencyStore();
  const inProgressExpiryMs = options.inProgressExpiryMs ?? 300_000;
  const prepare =
    options.prepare ?? ((crop: RgbImage, e: FaceEmbedder) => fitFaceCrop(crop, e.preprocessing.crop));
  const limits = {
    maxBytes: options.cropLimits?.maxBytes ?? 1024 * 1024,
    maxPixels: options.cropLimits?.maxPixels ?? 1_000_000,
  };
  const replyQueues = new Set(options.replyQueues ?? []);
  const ownCrop = options.embedder.preprocessing.crop;
  const cropMismatch = (cut: CropPolicy) =>
    `face cut as ${describeCropPolicy(cut)}, but this function's embedder (${options.embedder.modelId}) takes ` +
    `${describeCropPolicy(ownCrop)}: it was queued by a detection configured for another embedder ` +
    '(FACEREC_EMBEDDER on Lambda; with facerec serve, a queue file written while serving a gallery of another embedder)';

  return async (records, context = {}) => {
    const started = performance.now();
    const inProgressUntil = context.deadline ?? Date.now() + inProgressExpiryMs;
    const failures = new Set<string>();
    const fail = (record: QueueRecord, reason: string, extra: Record<string, unknown> = {}) => {
      failures.add(record.id);
      logger.warn('record failed', { message_id: record.id, reason, ...extra });
    };
    const pending: Pending[] = [];
    let unknown = 0;
    const timings: Record<string, number> = {};
    /** Per key claimed in this batch: the record that claimed it, and later records of the same face. */
    const claimedHere = new Map<string, { leader: string; followers: QueueRecord[] }>();
    /** Gives a claim up after a failure, so the next delivery processes the face again. */
    const release = async (p: Pick<Pending, 'key' | 'token' | 'message'>) => {
      try {
        await idempotency.fail(p.key, p.token);
      } catch (error) {
        logger.warn('could not record a failed attempt; its claim expires by itself', {
          request_id: p.message.request_id,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    };

    try {
      // 1. Parse, claim and decode every record; a bad one fails alone.
      let t = performance.now();
      const leaders: { record: QueueRecord; message: FaceMessage; key: string }[] = [];
      for (const record of records) {
        let message: FaceMessage;
        try {
          const parsed = faceMessageSchema.safeParse(JSON.parse(record.body));
          if (!parsed.success) {
            fail(record, `invalid face message: ${requestIssues(parsed.error, faceMessageSchema)}`);
            continue;
          }
          message = parsed.data;
          if (message.face_index >= message.face_count) {
            fail(record, 'invalid face message: face_index must be less than face_count', {
              request_id: message.request_id,
            });
            continue;
          }
          if (message.reply_to !== undefined && !replyQueues.has(message.reply_to)) {
            fail(record, 'reply_to is not one of the allowed reply queues (FACEREC_REPLY_QUEUES)', {
              request_id: message.request_id,
            });
            continue;
          }
          const cut = message.crop_policy;
          if (cut !== undefined && !sameCropPolicy(cut, ownCrop)) {
            // Embedding another geometry would answer with confident nonsense; the face goes to the
            // dead-letter queue instead, where the mismatch shows.
            fail(record, cropMismatch(cut), faceFields(message));
            continue;
          }
        } catch {
          fail(record, 'body is not valid JSON');
          continue;
        }
        const key = idempotencyKey(message);
        const here = claimedHere.get(key);
        if (here) here.followers.push(record);
        else {
          claimedHere.set(key, { leader: record.id, followers: [] });
          leaders.push({ record, message, key });
        }
      }
      // The claims are independent writes: one round trip for the batch, not one per record.
      const claims = await Promise.all(
        leaders.map(({ key }) =>
          idempotency
            .claim(key, { inProgressUntil })
            .catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))),
        ),
      );
      for (const [i, { record, message, key }] of leaders.entries()) {
        const claim = claims[i]!;
        const face = faceFields(message);
        if (claim instanceof Error) {
          fail(
            record,
            IdempotencyStoreUnavailableError.isInstance(claim)
              ? claim.message
              : `idempotency store: ${claim.message}`,
            face,
          );
          continue;
        }
        if (claim.status === 'completed') {
          logger.info('duplicate delivery: already answered', face);
          continue;
        }
        if (claim.status === 'in-progress') {
          // Another attempt holds the face; acknowledging would lose it should that attempt fail.
          failures.add(record.id);
          logger.info('duplicate delivery: in progress elsewhere, to be retried', face);
          continue;
        }
        try {
          const crop = await decodeImage(Buffer.from(message.crop, 'base64'), limits);
          const said = message.crop_policy?.size;
          if (said && (crop.width !== said.width || crop.height !== said.height)) {
            throw new Error(
              `the crop is ${crop.width}×${crop.height}, its message says ${said.width}×${said.height}`,
            );
          }
          // A message without crop_policy (from a detection function older than it) was cut for this embedder,
          // so at its size: a crop of another size was cut for another one, and would be answered confidently.
          const own = ownCrop.size;
          if (!said && (crop.width !== own.width || crop.height !== own.height)) {
            throw new Error(
              `the crop is ${crop.width}×${crop.height} and its message names no crop_policy; this embedder's crops are ` +
                `${own.width}×${own.height} (a detection function deployed for another embedder?)`,
            );
          }
          pending.push({ record, message, key, token: claim.token, face: prepare(crop, options.embedder) });
        } catch (error) {
          await release({ key, token: claim.token, message });
          fail(record, `crop: ${error instanceof Error ? error.message : String(error)}`, face);
        }
      }
      timings.decode_ms = since(t);

      // 2. Embed all faces together; if the batch fails, embed one by one to find the culprit(s).
      t = performance.now();
      if (pending.length > 0) {
        try {
          const vectors = await options.embedder.embed(pending.map((p) => p.face));
          pending.forEach((p, i) => {
            p.embedding = vectors[i];
          });
        } catch (batchError) {
          logger.warn('batch embedding failed; retrying faces one at a time', {
            error: batchError instanceof Error ? batchError.message : String(batchError),
          });
          for (const p of pending) {
            try {
              [p.embedding] = await options.embedder.embed([p.face]);
            } catch (error) {
              fail(
                p.record,
                `embed: ${error instanceof Error ? error.message : String(error)}`,
                faceFields(p.message),
              );
            }
          }
        }
      }
      timings.embed_ms = since(t);
      const embedded = pending.filter((p) => p.embedding !== undefined);
      await Promise.all(pending.filter((p) => !p.embedding).map(release));

      // 3. Match.
      t = performance.now();
      const given = options.threshold;
      const threshold = typeof given === 'function' ? given : () => given;
      const matchAt = (at: number | undefined) =>
        options.gallery.match(
          embedded.map((p) => p.embedding!),
          at === undefined ? {} : { threshold: at },
        );
      let matches: GalleryMatch[] = [];
      if (embedded.length) {
        const before = threshold();
        matches = await matchAt(before);
        const after = threshold();
        if (after !== before) matches = await matchAt(after);
      }
      timings.match_ms = since(t);

      // 4. Answer; a face whose answer could not be sent fails its record (and is retried on redelivery).
      t = performance.now();
      // Each answer goes to its client's reply queue, else the response queue: one publish per queue.
      const byQueue = new Map<string, OutboundMessage[]>();
      embedded.forEach((p, i) => {
        const match = matches[i]!;
        const body: ResponseMessage = {
          request_id: p.message.request_id,
          frame_id: p.message.frame_id,
          filename: p.message.filename,
          face_index: p.message.face_index,
          face_count: p.message.face_count,
          result: match.identity,
          distance: Math.round(match.distance * 1e4) / 1e4,
          box: p.message.box,
        };
        p.answer = messageBody(body);
        const queue = p.message.reply_to ?? options.responseQueue;
        if (!byQueue.has(queue)) byQueue.set(queue, []);
        // The face's key as the message id: a queue that deduplicates ids (the local runtime's durable one)
        // drops the answer a reprocessed face would send again after a crash.
        byQueue.get(queue)!.push({ id: p.key, body: p.answer });
      });
      const unsent = new Set<string>();
      // Stopped before the invocation's deadline, so that the faces not answered are reported as failed records
      // (retried) rather than the whole batch timing out.
      const publishing = publishOptionsBefore(context.deadline);
      await Promise.all(
        [...byQueue].map(async ([queue, answers]) => {
          try {
            await options.transport.publish(queue, answers, publishing);
          } catch (error) {
            const failedIds = failedMessageIds(error);
            let failed = 0;
            for (const a of answers) {
              if (failedIds && !failedIds.has(a.id!)) continue;
              unsent.add(a.id!);
              failed++;
            }
            logger.error('publishing answers failed', {
              error: error instanceof Error ? error.message : String(error),
              queue,
              failed,
            });
          }
        }),
      );
      timings.publish_ms = since(t);
      const answeredAt = Date.now();
      // Recording the outcomes: independent writes, made together.
      await Promise.all(
        embedded.map(async (p, i) => {
          const face = faceFields(p.message);
          if (unsent.has(p.key)) {
            await release(p);
            fail(p.record, 'answer not sent', face);
            return;
          }
          p.done = true;
          if (p.record.sentAt !== undefined) {
            metrics.add(METRIC.answerLatency, 'Milliseconds', Math.max(0, answeredAt - p.record.sentAt));
          }
          try {
            // No answer kept: it is never sent twice, and it names a person.
            if (!(await idempotency.complete(p.key, p.token))) {
              logger.warn(
                'the claim expired before the answer was recorded: another attempt may answer too',
                face,
              );
            }
          } catch (error) {
            // The answer is out: acknowledge the record all the same (a redelivery would answer twice); the
            // claim expires by itself.
            logger.error('could not record the answer', {
              ...face,
              error: error instanceof Error ? error.message : String(error),
            });
          }
          // Who a face is, is personal data: at INFO only whether it was known; the name at DEBUG.
          const { identity } = matches[i]!;
          if (identity === UNKNOWN_IDENTITY) unknown++;
          logger.info('face recognised', { ...face, known: identity !== UNKNOWN_IDENTITY });
          logger.debug('face recognised as', { ...face, result: identity });
        }),
      );
    } catch (error) {
      // Unexpected: fail every record not yet answered rather than let the exception fail the whole batch
      // opaquely; the queue redelivers exactly those.
      const message = error instanceof Error ? error.message : String(error);
      // A gallery store out of reach is no bug here: the batch is handed back to be delivered again.
      if (FacerecError.isInstance(error) && error.code === 'GALLERY_UNREACHABLE') {
        logger.error('gallery store unreachable; the batch is delivered again later', {
          error: message,
          records: records.length,
        });
      } else if (FacerecError.isInstance(error) && GALLERY_UNUSABLE.has(error.code)) {
        // A collection deleted, a database recreated, or a collection made again for another embedder under the
        // running function: said as such (not as a bug), and not answered `unknown` for everyone (nor matched
        // against another model's embeddings); delivered again until it is back or dead-lettered.
        logger.error(GALLERY_UNUSABLE.get(error.code)!, {
          reason: error.code,
          error: message,
          records: records.length,
        });
      } else logger.error('internal error', { error: message });
      const answered = new Set<string>();
      for (const p of pending) {
        if (p.done) answered.add(p.record.id);
        else await release(p);
      }
      for (const record of records) if (!answered.has(record.id)) failures.add(record.id);
    }
    // A record repeating a face of its own batch shares the outcome of the record that claimed it.
    for (const { leader, followers } of claimedHere.values()) {
      for (const record of followers) if (failures.has(leader)) failures.add(record.id);
    }
    const total = since(started);
    logger.info('batch done', {
      records: records.length,
      faces: pending.length,
      failed: failures.size,
      ...timings,
      total_ms: total,
    });
    if (records.length > 0) {
      metrics.add(METRIC.facesAnswered, 'Count', pending.filter((p) => p.done).length);
      metrics.add(METRIC.facesUnknown, 'Count', unknown);
      metrics.add(METRIC.facesFailed, 'Count', failures.size);
      metrics.add(METRIC.batchLatency, 'Milliseconds', total);
    }
    return { failedIds: [...failures] };
  };
}

/**
 * The ids a transport reported as not published (`PublishError.failures[].id` in `@facerec/transport-sqs`);
 * `undefined` when the error does not say, in which case every answer counts as unsent.
 */
function failedMessageIds(error: unknown): Set<string> | undefined {
  const failures = (error as { failures?: unknown } | null)?.failures;
  if (!Array.isArray(failures)) return undefined;
  return new Set(failures.map((f) => String((f as { id?: unknown }).id)));
}
