import {
  decodeImage,
  type FaceEmbedder,
  formatIssues,
  type Gallery,
  type OutboundMessage,
  type RgbImage,
  type Transport,
} from '@facerec/framework';
import { resizeBilinearPil } from '@facerec/framework/internal';
import { type IdempotencyStore, InMemoryIdempotencyStore } from './idempotency.js';
import { type PipelineLogger, silentLogger, since } from './logger.js';
import { type FaceMessage, faceMessageSchema, type ResponseMessage } from './messages.js';
import {
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
  /** Distance above which a face is `unknown`, instead of the gallery's own threshold. */
  readonly threshold?: number | undefined;
  readonly transport: Transport;
  /** Where the answers go. */
  readonly responseQueue: string;
  /** Default: an {@link InMemoryIdempotencyStore}. */
  readonly idempotency?: IdempotencyStore;
  /**
   * Turns a decoded crop into the embedder's input. Default: resize to the embedder's input size when it
   * differs (PIL-compatible bilinear).
   */
  readonly prepare?: (crop: RgbImage, embedder: FaceEmbedder) => RgbImage;
  /** Largest crop accepted from the queue, in bytes and pixels. Default 1 MiB, 1 megapixel. */
  readonly cropLimits?: { maxBytes?: number; maxPixels?: number };
  readonly logger?: PipelineLogger;
}

/** Default crop preparation: resize to the embedder's input size when needed. */
export function resizeToEmbedderInput(crop: RgbImage, embedder: FaceEmbedder): RgbImage {
  const { width, height } = embedder.preprocessing.inputSize;
  if (crop.width === width && crop.height === height) return crop;
  return resizeBilinearPil(crop, [0, 0, crop.width, crop.height], [width, height]);
}

interface Pending {
  record: QueueRecord;
  message: FaceMessage;
  key: string;
  face: RgbImage;
  embedding?: Float32Array;
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
 * `"unknown"`) to the response queue.
 *
 * Partial failures are reported per record in `failedIds`; no exception escapes the batch. A record whose
 * face was already answered (redelivery) is acknowledged without a second answer.
 */
export function createRecognitionRecordHandler(options: RecognitionHandlerOptions): RecordBatchHandler {
  const logger = options.logger ?? silentLogger;
  const idempotency = options.idempotency ?? new InMemoryIdempotencyStore();
  const prepare = options.prepare ?? resizeToEmbedderInput;
  const limits = {
    maxBytes: options.cropLimits?.maxBytes ?? 1024 * 1024,
    maxPixels: options.cropLimits?.maxPixels ?? 1_000_000,
  };

  return async (records) => {
    const started = performance.now();
    const failures = new Set<string>();
    const fail = (record: QueueRecord, reason: string, extra: Record<string, unknown> = {}) => {
      failures.add(record.id);
      logger.warn('record failed', { message_id: record.id, reason, ...extra });
    };
    const pending: Pending[] = [];
    const timings: Record<string, number> = {};

    try {
      // 1. Parse, claim and decode every record; a bad one fails alone.
      let t = performance.now();
      for (const record of records) {
        let message: FaceMessage;
        try {
          const parsed = faceMessageSchema.safeParse(JSON.parse(record.body));
          if (!parsed.success) {
            fail(record, `invalid face message: ${formatIssues(parsed.error)}`);
            continue;
          }
          message = parsed.data;
        } catch {
          fail(record, 'body is not valid JSON');
          continue;
        }
        const key = `${message.request_id}:${message.face_index}`;
        if (!(await idempotency.claim(key))) {
          logger.info('duplicate delivery skipped', {
            request_id: message.request_id,
            face_index: message.face_index,
          });
          continue;
        }
        try {
          const crop = await decodeImage(Buffer.from(message.crop, 'base64'), limits);
          pending.push({ record, message, key, face: prepare(crop, options.embedder) });
        } catch (error) {
          await idempotency.release(key);
          fail(record, `crop: ${error instanceof Error ? error.message : String(error)}`, {
            request_id: message.request_id,
          });
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
              fail(p.record, `embed: ${error instanceof Error ? error.message : String(error)}`, {
                request_id: p.message.request_id,
              });
            }
          }
        }
      }
      timings.embed_ms = since(t);
      const embedded = pending.filter((p) => p.embedding !== undefined);
      for (const p of pending) if (!p.embedding) await idempotency.release(p.key);

      // 3. Match.
      t = performance.now();
      const matches = embedded.length
        ? await options.gallery.match(
            embedded.map((p) => p.embedding!),
            options.threshold === undefined ? {} : { threshold: options.threshold },
          )
        : [];
      timings.match_ms = since(t);

      // 4. Answer; a face whose answer could not be sent fails its record (and is retried on redelivery).
      t = performance.now();
      const answers: OutboundMessage[] = embedded.map((p, i) => {
        const match = matches[i]!;
        const body: ResponseMessage = {
          request_id: p.message.request_id,
          filename: p.message.filename,
          face_index: p.message.face_index,
          face_count: p.message.face_count,
          result: match.identity,
          distance: Math.round(match.distance * 1e4) / 1e4,
          box: p.message.box,
        };
        return { id: p.record.id, body: JSON.stringify(body) };
      });
      const unsent = new Set<string>();
      if (answers.length) {
        try {
          await options.transport.publish(options.responseQueue, answers);
        } catch (error) {
          const failedIds = failedMessageIds(error);
          for (const a of answers) if (!failedIds || failedIds.has(a.id!)) unsent.add(a.id!);
          logger.error('publishing answers failed', {
            error: error instanceof Error ? error.message : String(error),
            failed: unsent.size,
          });
        }
      }
      timings.publish_ms = since(t);
      for (const p of embedded) {
        if (unsent.has(p.record.id)) {
          await idempotency.release(p.key);
          fail(p.record, 'answer not sent', { request_id: p.message.request_id });
        } else {
          await idempotency.complete(p.key);
          logger.info('face recognised', {
            request_id: p.message.request_id,
            face_index: p.message.face_index,
            result: matches[embedded.indexOf(p)]!.identity,
          });
        }
      }
    } catch (error) {
      // Unexpected: fail every record not yet answered rather than let the exception fail the whole batch
      // opaquely; the queue redelivers exactly those.
      logger.error('internal error', { error: error instanceof Error ? error.message : String(error) });
      for (const p of pending) await idempotency.release(p.key);
      for (const record of records) failures.add(record.id);
    }
    logger.info('batch done', {
      records: records.length,
      faces: pending.length,
      failed: failures.size,
      ...timings,
      total_ms: since(started),
    });
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
