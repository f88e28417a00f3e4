import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { OutboundMessage, ReceiveOptions } from '../contracts/transport.js';
import { InvalidOptionsError } from '../errors.js';
import { InvalidMessageError, MessageTooLargeError } from './errors.js';

/** SQS's classic message size limit, 256 KiB: the default `maxMessageBytes` of every transport. */
export const DEFAULT_MAX_MESSAGE_BYTES = 262_144;

/** The largest `maxMessageBytes` a transport accepts: SQS's current ceiling, 1 MiB. */
export const MAX_MESSAGE_BYTES_LIMIT = 1_048_576;

/** At most this many messages per receive, and per SQS batch request. */
export const MAX_BATCH_ENTRIES = 10;

/** The longest long poll SQS allows, in seconds; also the default wait of `receive`. */
export const MAX_WAIT_TIME_SECONDS = 20;

/** The longest visibility timeout SQS allows: 12 hours, in seconds. */
export const MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200;

// Every attribute is sent as an SQS `String` attribute, and SQS counts the data type's name in the size.
const ATTRIBUTE_DATA_TYPE = 'String';
const DATA_TYPE_BYTES = Buffer.byteLength(ATTRIBUTE_DATA_TYPE, 'utf8');

/**
 * The size of a message as SQS counts it against its limit: the UTF-8 bytes of the body plus, for each
 * attribute, the bytes of its name, its data type (`String`) and its value.
 *
 * @example
 * messageSizeBytes({ body: 'héllo', attributes: { kind: 'frame' } }); // 6 + (4 + 6 + 5) = 21
 */
export function messageSizeBytes(message: Pick<OutboundMessage, 'body' | 'attributes'>): number {
  let size = Buffer.byteLength(message.body, 'utf8');
  for (const [name, value] of Object.entries(message.attributes ?? {})) {
    size += Buffer.byteLength(name, 'utf8') + DATA_TYPE_BYTES + Buffer.byteLength(value, 'utf8');
  }
  return size;
}

/** An {@link OutboundMessage} checked by {@link prepareOutboundMessages}: it has an id and a known size. */
export interface PreparedMessage {
  readonly id: string;
  readonly body: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** {@link messageSizeBytes} of the message. */
  readonly sizeBytes: number;
}

/**
 * Checks a whole `publish` call before anything is sent, so a bad message publishes nothing: every body is a
 * non-empty string, ids are unique within the call (one is generated for a message without one), and every
 * message fits in `maxMessageBytes`.
 *
 * @throws {InvalidMessageError} an empty body, a non-string attribute value or a duplicate id.
 * @throws {MessageTooLargeError} a message over `maxMessageBytes`.
 */
export function prepareOutboundMessages(
  messages: readonly OutboundMessage[],
  maxMessageBytes: number,
): PreparedMessage[] {
  const seen = new Set<string>();
  return messages.map((message, index) => {
    const label = message.id ?? `#${index}`;
    // SQS rejects empty bodies; refusing them here keeps the in-memory queue honest about it.
    if (typeof message.body !== 'string' || message.body.length === 0) {
      throw new InvalidMessageError(label, 'body must be a non-empty string');
    }
    const attributes = { ...message.attributes };
    for (const [name, value] of Object.entries(attributes)) {
      if (name.length === 0 || typeof value !== 'string') {
        throw new InvalidMessageError(
          label,
          `attribute "${name}" must have a non-empty name and a string value`,
        );
      }
    }
    if (message.id !== undefined && (typeof message.id !== 'string' || message.id.length === 0)) {
      throw new InvalidMessageError(label, 'id must be a non-empty string when given');
    }
    const id = message.id ?? randomUUID();
    if (seen.has(id)) throw new InvalidMessageError(id, 'id is used twice in one publish call');
    seen.add(id);
    const sizeBytes = messageSizeBytes({ body: message.body, attributes });
    if (sizeBytes > maxMessageBytes) throw new MessageTooLargeError(id, sizeBytes, maxMessageBytes);
    return { id, body: message.body, attributes, sizeBytes };
  });
}

/** {@link ReceiveOptions} with the defaults applied. */
export interface ResolvedReceiveOptions {
  readonly maxMessages: number;
  readonly waitTimeSeconds: number;
  /** Undefined: the queue's own visibility timeout. */
  readonly visibilityTimeoutSeconds: number | undefined;
  readonly signal: AbortSignal | undefined;
}

const receiveSchema = z
  .object({
    maxMessages: z.number().int().min(1).max(MAX_BATCH_ENTRIES),
    waitTimeSeconds: z.number().int().min(0).max(MAX_WAIT_TIME_SECONDS),
    visibilityTimeoutSeconds: z.number().int().min(0).max(MAX_VISIBILITY_TIMEOUT_SECONDS),
    signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, 'must be an AbortSignal'),
  })
  .partial()
  .strict();

/**
 * Validates {@link ReceiveOptions} against SQS's ranges (maxMessages 1–10, waitTimeSeconds 0–20,
 * visibilityTimeoutSeconds 0–43200, all integers) and applies the defaults (10 messages, a 20 s long poll).
 *
 * @throws {InvalidOptionsError} naming `component` and each bad or unknown key.
 */
export function resolveReceiveOptions(
  options: ReceiveOptions | undefined,
  component: string,
): ResolvedReceiveOptions {
  const parsed = receiveSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw new InvalidOptionsError(component, `invalid receive options: ${formatIssues(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return {
    maxMessages: parsed.data.maxMessages ?? MAX_BATCH_ENTRIES,
    waitTimeSeconds: parsed.data.waitTimeSeconds ?? MAX_WAIT_TIME_SECONDS,
    visibilityTimeoutSeconds: parsed.data.visibilityTimeoutSeconds,
    signal: parsed.data.signal,
  };
}

/** Validates a visibility timeout given to `changeVisibility` (an integer, 0–43200 seconds). */
export function assertVisibilityTimeout(seconds: number, component: string): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_VISIBILITY_TIMEOUT_SECONDS) {
    throw new InvalidOptionsError(
      component,
      `visibility timeout must be an integer from 0 to ${MAX_VISIBILITY_TIMEOUT_SECONDS} seconds, got ${seconds}`,
    );
  }
}

/** One line per zod issue, `path: message`, for error messages that name the bad key. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}
