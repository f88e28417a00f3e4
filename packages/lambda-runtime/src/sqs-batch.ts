import { InvalidInputError, type PublishOptions, type ReceivedMessage } from '@facerec/framework';

/**
 * One queue message as a batch handler takes it, whichever way it came: from Lambda's SQS event source
 * mapping ({@link recordsFromSqsEvent}) or from any `Transport`'s `receive` (a `ReceivedMessage` is one).
 */
export type QueueRecord = Pick<ReceivedMessage, 'id' | 'body' | 'receiveCount' | 'sentAt'>;

/** What a batch handler reports: the ids of the records that failed and should be delivered again. */
export interface RecordBatchResult {
  readonly failedIds: readonly string[];
}

/** What a batch handler knows of the invocation it runs in. */
export interface RecordBatchContext {
  /**
   * When the invocation is cut off (epoch milliseconds): on Lambda, now plus the context's remaining time.
   * Undefined where nothing cuts it off (the local runtime).
   */
  readonly deadline?: number;
}

/** Time kept before an invocation's deadline to log a publish that did not finish and answer for it. */
const DEADLINE_MARGIN_MS = 1000;

/**
 * `Transport.publish` options whose signal aborts {@link DEADLINE_MARGIN_MS} before `deadline` (epoch
 * milliseconds), for a publish that must give up while the invocation can still say so; none without a deadline
 * (the local runtime).
 */
export function publishOptionsBefore(deadline: number | undefined): PublishOptions {
  return deadline === undefined
    ? {}
    : { signal: AbortSignal.timeout(Math.max(0, deadline - Date.now() - DEADLINE_MARGIN_MS)) };
}

/**
 * Handles a batch of queue records. A record that cannot be processed is reported in `failedIds`; it never
 * fails the others, and the handler does not throw for it.
 */
export type RecordBatchHandler = (
  records: readonly QueueRecord[],
  context?: RecordBatchContext,
) => Promise<RecordBatchResult>;

/** The part of an SQS event record the handlers read. */
export interface SqsRecord {
  readonly messageId: string;
  readonly body: string;
  readonly attributes?: { readonly ApproximateReceiveCount?: string; readonly SentTimestamp?: string };
}

/** An SQS event. */
export interface SqsEvent {
  readonly Records: readonly SqsRecord[];
}

/** The partial-batch answer (`ReportBatchItemFailures`). */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** The part of the Lambda context the handlers read. */
export interface LambdaContextLike {
  getRemainingTimeInMillis(): number;
}

/** A Lambda handler for SQS events, as the event source mapping calls it. */
export type SqsEventHandler = (event: SqsEvent, context?: LambdaContextLike) => Promise<SqsBatchResponse>;

/**
 * A {@link RecordBatchHandler} presented as a Lambda SQS handler; `handleRecords` is the handler it adapts,
 * for hosts that are not Lambda (the local runtime feeds it a transport's messages directly).
 */
export interface SqsBatchHandler extends SqsEventHandler {
  readonly handleRecords: RecordBatchHandler;
}

/**
 * The records of an SQS event: `messageId` becomes `id`, `ApproximateReceiveCount` `receiveCount` (1 when
 * absent or not a positive integer), `SentTimestamp` `sentAt` (left out when absent or not a timestamp).
 */
export function recordsFromSqsEvent(event: SqsEvent): QueueRecord[] {
  // SQS never sends these; a test event made by hand might. No record can be reported failed without its id.
  const records = (event as Partial<SqsEvent> | null | undefined)?.Records;
  if (!Array.isArray(records)) throw new InvalidInputError('not an SQS event: it has no Records array');
  return records.map((record: SqsRecord | null | undefined, i) => {
    if (typeof record?.messageId !== 'string' || typeof record.body !== 'string') {
      throw new InvalidInputError(`not an SQS event: record ${i} has no messageId or body string`);
    }
    const receiveCount = Number(record.attributes?.ApproximateReceiveCount);
    const sentAt = Number(record.attributes?.SentTimestamp);
    return {
      id: record.messageId,
      body: record.body,
      receiveCount: Number.isInteger(receiveCount) && receiveCount > 0 ? receiveCount : 1,
      ...(Number.isSafeInteger(sentAt) && sentAt > 0 ? { sentAt } : {}),
    };
  });
}

/**
 * Adapts a {@link RecordBatchHandler} to Lambda's SQS trigger: the event's records in, the failed ids out as
 * `batchItemFailures` (enable `ReportBatchItemFailures` on the event source mapping); the invocation's
 * deadline from the Lambda context when there is one.
 *
 * @example
 * export const handler = sqsBatchHandler(async (records) => ({ failedIds: await handleAll(records) }));
 */
export function sqsBatchHandler(handleRecords: RecordBatchHandler): SqsBatchHandler {
  const handler = async (event: SqsEvent, context?: LambdaContextLike): Promise<SqsBatchResponse> => {
    const remaining = context?.getRemainingTimeInMillis?.();
    const { failedIds } = await handleRecords(
      recordsFromSqsEvent(event),
      remaining === undefined ? {} : { deadline: Date.now() + remaining },
    );
    return { batchItemFailures: failedIds.map((itemIdentifier) => ({ itemIdentifier })) };
  };
  return Object.assign(handler, { handleRecords });
}

/**
 * The {@link RecordBatchHandler} behind a Lambda SQS handler: the one it adapts when it was made by
 * {@link sqsBatchHandler}; otherwise one that hands the records to it as an SQS event, for a handler written
 * against Lambda's types only.
 */
export function recordHandlerOf(
  handler: SqsEventHandler & { readonly handleRecords?: RecordBatchHandler },
): RecordBatchHandler {
  if (handler.handleRecords) return handler.handleRecords;
  return async (records, context) => {
    const event: SqsEvent = {
      Records: records.map((record) => ({
        messageId: record.id,
        body: record.body,
        attributes: {
          ApproximateReceiveCount: String(record.receiveCount),
          ...(record.sentAt === undefined ? {} : { SentTimestamp: String(record.sentAt) }),
        },
      })),
    };
    const deadline = context?.deadline;
    const { batchItemFailures } = await handler(
      event,
      deadline === undefined ? undefined : { getRemainingTimeInMillis: () => deadline - Date.now() },
    );
    return { failedIds: batchItemFailures.map((failure) => failure.itemIdentifier) };
  };
}
