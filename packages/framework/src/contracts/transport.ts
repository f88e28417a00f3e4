import type { SpecificationVersion } from './version.js';

/** A message to publish. `id` must be unique within one `publish` call; one is generated when absent. */
export interface OutboundMessage {
  readonly id?: string;
  /** The message body (JSON text in facerec's pipeline). */
  readonly body: string;
  /** Optional string attributes. */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** A message handed to a polling consumer. Acknowledge it, or it is redelivered after its visibility timeout. */
export interface ReceivedMessage {
  readonly id: string;
  readonly body: string;
  /** Opaque handle used to acknowledge this delivery. */
  readonly receipt: string;
  /** How many times the message has been received, this delivery included. */
  readonly receiveCount: number;
  readonly attributes: Readonly<Record<string, string>>;
  /**
   * When the message was published (epoch milliseconds), where the transport knows it (SQS's `SentTimestamp`):
   * recognition measures an answer's latency from it.
   */
  readonly sentAt?: number;
}

/** Options for {@link Transport.receive}. */
export interface ReceiveOptions {
  /** At most this many messages (1–10). Default 10. */
  readonly maxMessages?: number;
  /** Long-poll for up to this many seconds when the queue is empty (0–20). Default 20. */
  readonly waitTimeSeconds?: number;
  /** Hide received messages from other consumers for this long. Default: the queue's setting. */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Give up waiting early: aborted, `receive` rejects with `signal.reason` (as `fetch` and Node's timers do), and
   * takes no message. A consumer loop tells a stop from a failure that way.
   */
  readonly signal?: AbortSignal;
}

/** Options for {@link Transport.publish}. */
export interface PublishOptions {
  /**
   * Give up early (a Lambda invocation's deadline): aborted, `publish` stops retrying, sends nothing more and
   * rejects; what was accepted before stays published (and a call cut short may have been accepted all the
   * same). A transport that can half-publish says which messages were not accepted (the SQS one: its
   * `PublishError`); one that publishes at once (the in-memory one) rejects with the signal's reason. Already
   * aborted, nothing is sent (an empty publish still resolves).
   */
  readonly signal?: AbortSignal;
}

/**
 * A message transport between pipeline stages (SQS in the cloud, an in-process queue locally). Queues are
 * named by whatever the implementation uses to address them (an SQS queue URL, a local name).
 */
export interface Transport {
  readonly specificationVersion: SpecificationVersion;
  /**
   * Publish messages, batching as the backend allows. Resolves only when every message was accepted;
   * otherwise rejects with an error that lists the messages that were not. Messages are held to SQS's rules
   * whatever the backend, so that what runs locally runs on SQS: the whole call is checked before anything is
   * sent (`prepareOutboundMessages` does it: non-empty bodies without the characters SQS refuses, at most 10
   * attributes with names and non-empty values SQS takes, unique ids, a size limit), and a bad message publishes
   * nothing (`InvalidMessageError`, `MessageTooLargeError`).
   */
  publish(queue: string, messages: readonly OutboundMessage[], options?: PublishOptions): Promise<void>;
  /**
   * Receive up to `maxMessages` messages (long polling). Options out of range are refused
   * (`InvalidOptionsError`; `resolveReceiveOptions` checks them and applies the defaults).
   */
  receive(queue: string, options?: ReceiveOptions): Promise<ReceivedMessage[]>;
  /** Acknowledge (delete) received messages so they are not redelivered. */
  acknowledge(queue: string, messages: readonly Pick<ReceivedMessage, 'receipt'>[]): Promise<void>;
}
