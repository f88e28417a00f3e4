import {
  type BatchResultErrorEntry,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  InvalidOptionsError,
  InvalidReceiptError,
  type OutboundMessage,
  type PublishOptions,
  type ReceivedMessage,
  type ReceiveOptions,
  SPECIFICATION_VERSION,
  type Transport,
} from '@facerec/framework';
import {
  assertVisibilityTimeout,
  type PreparedMessage,
  prepareOutboundMessages,
  resolveReceiveOptions,
} from '@facerec/framework/internal';
import {
  AcknowledgeError,
  type AcknowledgeFailure,
  describeError,
  errorCode,
  PublishError,
  type PublishFailure,
  SqsRequestError,
} from './errors.js';
import { SQS_LIMITS } from './limits.js';
import { PACKAGE, resolveSqsTransportOptions, type SqsTransportOptions } from './options.js';
import { backoffDelayMs, isRetryableError, type RetryPolicy, type Sleep } from './retry.js';

/** The answer of a batch call: which entry ids succeeded, which failed and why. */
interface BatchResult {
  readonly Successful?: readonly { readonly Id?: string | undefined }[] | undefined;
  readonly Failed?: readonly BatchResultErrorEntry[] | undefined;
}

interface BatchEntry<T> {
  /** Unique within the batch request; SQS allows only `[A-Za-z0-9_-]`, so caller ids cannot be used. */
  readonly entryId: string;
  readonly item: T;
}

interface EntryFailure<T> {
  readonly item: T;
  readonly code: string;
  readonly message: string;
  readonly senderFault: boolean;
  readonly attempts: number;
}

interface BatchOutcome<T> {
  readonly failed: EntryFailure<T>[];
  /** The error of the whole call that ended the batch, when one did (not retryable, or out of attempts). */
  readonly fatal?: unknown;
}

// SQS system attributes (MessageSystemAttributeName) this transport reads.
const RECEIVE_COUNT = 'ApproximateReceiveCount';
const SENT_TIMESTAMP = 'SentTimestamp';
// ChangeMessageVisibility errors that mean the caller's receipt is stale or foreign, not that SQS failed.
const RECEIPT_ERRORS = new Set(['ReceiptHandleIsInvalid', 'MessageNotInflight']);

/**
 * A {@link Transport} on Amazon SQS (or any SQS-compatible server); queues are addressed by queue URL.
 * Create it with {@link createSqsTransport}.
 */
export class SqsTransport implements Transport {
  readonly specificationVersion = SPECIFICATION_VERSION;
  /** The SQS client in use: the one passed in, or the one created from `region` and `endpoint`. */
  readonly client: SQSClient;
  /** Largest message and largest batch payload, in bytes. */
  readonly maxMessageBytes: number;
  /** Retry policy in force. */
  readonly retry: Readonly<RetryPolicy>;

  readonly #sleep: Sleep;
  readonly #ownsClient: boolean;
  /** The created client's request timeout, which a long poll extends by its wait; none for a client passed in. */
  readonly #requestTimeoutMs: number | undefined;

  constructor(options: SqsTransportOptions = {}) {
    const resolved = resolveSqsTransportOptions(options);
    this.#ownsClient = resolved.client === undefined;
    this.client =
      resolved.client ??
      new SQSClient({
        ...(resolved.region !== undefined && { region: resolved.region }),
        ...(resolved.endpoint !== undefined && { endpoint: resolved.endpoint }),
        // The transport retries per entry (a batch call can half succeed); SDK retries would multiply its own.
        maxAttempts: 1,
        requestHandler: {
          connectionTimeout: resolved.requestTimeoutMs,
          requestTimeout: resolved.requestTimeoutMs,
          throwOnRequestTimeout: true,
        },
      });
    this.#requestTimeoutMs = this.#ownsClient ? resolved.requestTimeoutMs : undefined;
    this.maxMessageBytes = resolved.maxMessageBytes;
    this.retry = Object.freeze({ ...resolved.retry });
    this.#sleep = resolved.sleep;
  }

  /**
   * Sends `messages` with `SendMessageBatch`: batches of at most 10 entries and `maxMessageBytes` of payload,
   * one batch after another. Entries SQS reports as failed are retried alone, with backoff, unless SQS blamed
   * the request (`SenderFault`); throttled or failed calls are retried whole. A call that fails for good
   * (access denied, no such queue, out of attempts) stops the publish: later batches are not sent.
   *
   * `signal` (a Lambda invocation's deadline) stops it early: the call in flight is abandoned (SQS may have taken
   * it all the same), no retry or later batch is sent, and the messages not accepted are listed in the
   * `PublishError`, whose cause is the signal's reason.
   *
   * @throws {MessageTooLargeError} a message over `maxMessageBytes`; nothing is sent.
   * @throws {InvalidMessageError} an empty body or duplicate id; nothing is sent.
   * @throws {PublishError} after retries, listing each message not published with SQS's code and message.
   */
  async publish(
    queue: string,
    messages: readonly OutboundMessage[],
    options: PublishOptions = {},
  ): Promise<void> {
    assertQueueUrl(queue);
    const prepared = prepareOutboundMessages(messages, this.maxMessageBytes);
    const { signal } = options;
    const failures: PublishFailure[] = [];
    const publishedIds: string[] = [];
    let fatal: unknown;
    for (const batch of packBatches(prepared, SQS_LIMITS.maxBatchEntries, this.maxMessageBytes)) {
      if (fatal === undefined && signal?.aborted) fatal = signal.reason;
      if (fatal !== undefined) {
        for (const message of batch) {
          failures.push({
            id: message.id,
            code: errorCode(fatal),
            message: `not sent: an earlier batch failed with ${describeError(fatal)}`,
            senderFault: false,
            attempts: 0,
          });
        }
        continue;
      }
      const outcome = await this.#runBatch(
        batch,
        (entries) =>
          this.client.send(
            new SendMessageBatchCommand({
              QueueUrl: queue,
              Entries: entries.map(({ entryId, item }) => ({
                Id: entryId,
                MessageBody: item.body,
                ...(Object.keys(item.attributes).length > 0 && {
                  MessageAttributes: toSqsAttributes(item.attributes),
                }),
              })),
            }),
            signal ? { abortSignal: signal } : {},
          ),
        signal,
      );
      fatal = outcome.fatal;
      const failed = new Set(outcome.failed.map((failure) => failure.item));
      for (const message of batch) if (!failed.has(message)) publishedIds.push(message.id);
      for (const { item, ...failure } of outcome.failed) failures.push({ id: item.id, ...failure });
    }
    if (failures.length > 0) {
      throw new PublishError(
        queue,
        failures,
        publishedIds,
        fatal === undefined ? undefined : { cause: fatal },
      );
    }
  }

  /**
   * Long-polls the queue with `ReceiveMessage` (default 20 s, up to 10 messages), asking for each message's
   * `ApproximateReceiveCount` (the `receiveCount`) and all its message attributes. `id` is SQS's MessageId.
   * Throttling and transient failures are retried with backoff.
   *
   * @throws the signal's reason when `signal` aborts.
   * @throws {SqsRequestError} when SQS fails for good.
   */
  async receive(queue: string, options?: ReceiveOptions): Promise<ReceivedMessage[]> {
    assertQueueUrl(queue);
    const resolved = resolveReceiveOptions(options, PACKAGE, SQS_LIMITS);
    const { signal } = resolved;
    const output = await this.#call(
      () =>
        this.client.send(
          new ReceiveMessageCommand({
            QueueUrl: queue,
            MaxNumberOfMessages: resolved.maxMessages,
            WaitTimeSeconds: resolved.waitTimeSeconds,
            ...(resolved.visibilityTimeoutSeconds !== undefined && {
              VisibilityTimeout: resolved.visibilityTimeoutSeconds,
            }),
            MessageSystemAttributeNames: [RECEIVE_COUNT, SENT_TIMESTAMP],
            MessageAttributeNames: ['All'],
          }),
          {
            ...(signal && { abortSignal: signal }),
            ...(this.#requestTimeoutMs !== undefined && {
              requestTimeout: this.#requestTimeoutMs + resolved.waitTimeSeconds * 1000,
            }),
          },
        ),
      (error, attempts) => new SqsRequestError('ReceiveMessage', queue, attempts, error),
      signal,
    );
    return (output.Messages ?? []).map(toReceivedMessage);
  }

  /**
   * Deletes delivered messages with `DeleteMessageBatch`, 10 receipts per call, retrying failed entries and
   * calls as `publish` does.
   *
   * @throws {AcknowledgeError} after retries, listing each receipt not deleted with SQS's code and message.
   */
  async acknowledge(queue: string, messages: readonly Pick<ReceivedMessage, 'receipt'>[]): Promise<void> {
    assertQueueUrl(queue);
    const items = messages.map(({ receipt }, index) => ({ index, receipt }));
    const failures: AcknowledgeFailure[] = [];
    let fatal: unknown;
    for (let start = 0; start < items.length; start += SQS_LIMITS.maxBatchEntries) {
      const chunk = items.slice(start, start + SQS_LIMITS.maxBatchEntries);
      if (fatal !== undefined) {
        for (const { index, receipt } of chunk) {
          const message = `not sent: an earlier batch failed with ${describeError(fatal)}`;
          failures.push({ index, receipt, code: errorCode(fatal), message, senderFault: false, attempts: 0 });
        }
        continue;
      }
      const outcome = await this.#runBatch(chunk, (entries) =>
        this.client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queue,
            Entries: entries.map(({ entryId, item }) => ({ Id: entryId, ReceiptHandle: item.receipt })),
          }),
        ),
      );
      fatal = outcome.fatal;
      for (const { item, ...failure } of outcome.failed) failures.push({ ...item, ...failure });
    }
    if (failures.length > 0) {
      throw new AcknowledgeError(
        queue,
        failures,
        items.length,
        fatal === undefined ? undefined : { cause: fatal },
      );
    }
  }

  /**
   * Changes how long a delivered message stays hidden, from now (`ChangeMessageVisibility`): 0 makes it
   * visible at once, more gives a slow handler time.
   *
   * @throws {InvalidReceiptError} when SQS refuses the receipt (stale, or the message is no longer in flight).
   * @throws {SqsRequestError} when SQS fails for good.
   */
  async changeVisibility(
    queue: string,
    message: Pick<ReceivedMessage, 'receipt'>,
    visibilityTimeoutSeconds: number,
  ): Promise<void> {
    assertQueueUrl(queue);
    assertVisibilityTimeout(visibilityTimeoutSeconds, PACKAGE, SQS_LIMITS.maxVisibilityTimeoutSeconds);
    await this.#call(
      () =>
        this.client.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queue,
            ReceiptHandle: message.receipt,
            VisibilityTimeout: visibilityTimeoutSeconds,
          }),
        ),
      (error, attempts) =>
        RECEIPT_ERRORS.has(errorCode(error))
          ? new InvalidReceiptError(queue, message.receipt, describeError(error), { cause: error })
          : new SqsRequestError('ChangeMessageVisibility', queue, attempts, error),
    );
  }

  /** Destroys the SQS client if the transport created it; a client passed in is left to its owner. */
  async close(): Promise<void> {
    if (this.#ownsClient) this.client.destroy();
  }

  /** One call, retried whole while its error is transient. */
  async #call<T>(
    send: () => Promise<T>,
    fail: (error: unknown, attempts: number) => Error,
    signal?: AbortSignal,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        return await raceAbort(send(), signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (attempt >= this.retry.maxAttempts || !isRetryableError(error)) throw fail(error, attempt);
        await this.#backoff(attempt, signal);
      }
    }
  }

  /**
   * One batch of at most 10 items, with retries: a whole call that throws is retried while its error is
   * transient; otherwise only the entries SQS reports as failed without `SenderFault` are sent again.
   */
  async #runBatch<T>(
    items: readonly T[],
    send: (entries: readonly BatchEntry<T>[]) => Promise<BatchResult>,
    signal?: AbortSignal,
  ): Promise<BatchOutcome<T>> {
    const failed: EntryFailure<T>[] = [];
    let pending = items.map((item, index) => ({
      entryId: `m${index}`,
      item,
      last: { code: 'Unknown', message: '' },
    }));
    // Every entry still pending fails with `error`, which stops the publish or acknowledge.
    const giveUp = (error: unknown, attempts: number): BatchOutcome<T> => {
      const code = errorCode(error);
      const message = error instanceof Error ? error.message : String(error);
      for (const { item } of pending) failed.push({ item, code, message, senderFault: false, attempts });
      return { failed, fatal: error };
    };
    // The backoff before another try; true when the signal stopped it.
    const stoppedWaiting = (attempt: number) =>
      this.#backoff(attempt, signal).then(
        () => false,
        () => true,
      );
    for (let attempt = 1; ; attempt++) {
      let result: BatchResult;
      try {
        result = await raceAbort(send(pending), signal);
      } catch (error) {
        if (signal?.aborted) return giveUp(signal.reason, attempt);
        if (attempt < this.retry.maxAttempts && isRetryableError(error)) {
          if (await stoppedWaiting(attempt)) return giveUp(signal?.reason, attempt);
          continue;
        }
        return giveUp(error, attempt);
      }
      const succeeded = new Set((result.Successful ?? []).map((entry) => entry.Id));
      const errors = new Map((result.Failed ?? []).map((entry) => [entry.Id, entry]));
      const retry: typeof pending = [];
      for (const entry of pending) {
        if (succeeded.has(entry.entryId)) continue;
        const error = errors.get(entry.entryId);
        const code = error?.Code ?? 'MissingResult';
        const message = error
          ? (error.Message ?? '')
          : 'SQS reported neither success nor failure for this entry';
        if (error?.SenderFault) {
          failed.push({ item: entry.item, code, message, senderFault: true, attempts: attempt });
        } else {
          retry.push({ ...entry, last: { code, message } });
        }
      }
      pending = retry;
      if (pending.length === 0) return { failed };
      if (attempt >= this.retry.maxAttempts) {
        for (const { item, last } of pending)
          failed.push({ item, ...last, senderFault: false, attempts: attempt });
        return { failed };
      }
      if (await stoppedWaiting(attempt)) return giveUp(signal?.reason, attempt);
    }
  }

  async #backoff(retry: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.#sleep(backoffDelayMs(this.retry, retry), signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw error;
    }
  }
}

/**
 * Creates a {@link Transport} on Amazon SQS. Options are merged over the documented defaults and validated
 * once; an unknown key throws `InvalidOptionsError`.
 *
 * @example
 * const transport = createSqsTransport({ region: 'eu-west-1' });
 * await transport.publish(queueUrl, [{ id: 'frame-1', body: JSON.stringify(job) }]);
 * for (const message of await transport.receive(queueUrl, { waitTimeSeconds: 20 })) {
 *   await handle(message);
 *   await transport.acknowledge(queueUrl, [message]);
 * }
 *
 * @example
 * // Against ElasticMQ or LocalStack, with gentler retries:
 * createSqsTransport({ endpoint: 'http://localhost:9324', region: 'us-east-1', retry: { maxAttempts: 3 } });
 */
export function createSqsTransport(options: SqsTransportOptions = {}): SqsTransport {
  return new SqsTransport(options);
}

/** Consecutive batches of at most `maxEntries` messages whose sizes add up to at most `maxBytes`. */
export function packBatches<T extends Pick<PreparedMessage, 'sizeBytes'>>(
  messages: readonly T[],
  maxEntries: number,
  maxBytes: number,
): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const message of messages) {
    if (current.length > 0 && (current.length >= maxEntries || bytes + message.sizeBytes > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += message.sizeBytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function toSqsAttributes(
  attributes: Readonly<Record<string, string>>,
): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }]),
  );
}

function toReceivedMessage(message: Message): ReceivedMessage {
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    // String and Number attributes come as text; Binary ones (sent by other producers) as base64.
    if (value.StringValue !== undefined) attributes[name] = value.StringValue;
    else if (value.BinaryValue !== undefined)
      attributes[name] = Buffer.from(value.BinaryValue).toString('base64');
  }
  const receiveCount = Number(message.Attributes?.[RECEIVE_COUNT]);
  const sentAt = Number(message.Attributes?.[SENT_TIMESTAMP]);
  return {
    id: message.MessageId ?? '',
    body: message.Body ?? '',
    receipt: message.ReceiptHandle ?? '',
    receiveCount: Number.isInteger(receiveCount) && receiveCount > 0 ? receiveCount : 1,
    attributes,
    ...(Number.isSafeInteger(sentAt) && sentAt > 0 ? { sentAt } : {}),
  };
}

function assertQueueUrl(queue: string): void {
  assertSqsQueueUrl(queue, 'queue');
}

/**
 * Checks that `queue` is an SQS queue URL (http or https, with a path: `https://sqs.<region>.amazonaws.com/<account>/<name>`
 * or an SQS-compatible server's), naming `what` (an option or variable) in the error; the URL itself is not
 * repeated back.
 *
 * @throws {InvalidOptionsError} otherwise.
 */
export function assertSqsQueueUrl(queue: string, what: string): void {
  let url: URL | undefined;
  try {
    url = typeof queue === 'string' ? new URL(queue) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.pathname.length <= 1) {
    throw new InvalidOptionsError(
      PACKAGE,
      `${what} must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>, or an SQS-compatible server's)`,
    );
  }
}

/**
 * Settles with `promise`, or rejects with the signal's reason as soon as it aborts: the SDK is given the
 * signal too, but an abort must end the wait even when a handler (or a mock) does not honour it.
 */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) {
      onAbort();
      promise.catch(() => undefined);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
