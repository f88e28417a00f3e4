import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { OutboundMessage, ReceiveOptions } from '../contracts/transport.js';
import { InvalidOptionsError } from '../errors.js';
import { formatIssues } from '../options.js';
import { InvalidMessageError, MessageTooLargeError } from './errors.js';

/**
 * The ranges a transport accepts in {@link ReceiveOptions}. Each transport owns its own (SQS's are in
 * `@facerec/transport-sqs`); the largest `maxMessages` and `waitTimeSeconds` are also the defaults, as the
 * `Transport` contract documents.
 */
export interface ReceiveLimits {
  /** Most messages one receive may ask for; also the default. */
  readonly maxMessages: number;
  /** Longest long poll, in seconds; also the default wait. */
  readonly maxWaitTimeSeconds: number;
  /** Longest visibility timeout, in seconds. */
  readonly maxVisibilityTimeoutSeconds: number;
}

// Attributes are string-typed, and the type's name counts towards the size (as SQS counts it).
const ATTRIBUTE_DATA_TYPE = 'String';
const DATA_TYPE_BYTES = Buffer.byteLength(ATTRIBUTE_DATA_TYPE, 'utf8');

/**
 * The size of a message as every facerec transport counts it against its limit: the UTF-8 bytes of the body
 * plus, for each attribute, the bytes of its name, its data type (`String`) and its value. This is how SQS
 * counts, so a message that fits a local queue fits SQS too; each transport sets its own limit.
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
    // SQS rejects empty bodies; refusing them in every transport keeps local runs honest about it.
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

function receiveSchema(limits: ReceiveLimits) {
  return z
    .object({
      maxMessages: z.number().int().min(1).max(limits.maxMessages),
      waitTimeSeconds: z.number().int().min(0).max(limits.maxWaitTimeSeconds),
      visibilityTimeoutSeconds: z.number().int().min(0).max(limits.maxVisibilityTimeoutSeconds),
      signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, 'must be an AbortSignal'),
    })
    .partial()
    .strict();
}

/**
 * Validates {@link ReceiveOptions} against a transport's `limits` (integers, `maxMessages` from 1, the others
 * from 0) and applies the defaults: `limits.maxMessages` messages, a `limits.maxWaitTimeSeconds` long poll.
 *
 * @throws {InvalidOptionsError} naming `component` and each bad or unknown key.
 *
 * @example
 * resolveReceiveOptions({ waitTimeSeconds: 0 }, 'MyTransport', myLimits); // { maxMessages: myLimits.maxMessages, ... }
 */
export function resolveReceiveOptions(
  options: ReceiveOptions | undefined,
  component: string,
  limits: ReceiveLimits,
): ResolvedReceiveOptions {
  const parsed = receiveSchema(limits).safeParse(options ?? {});
  if (!parsed.success) {
    throw new InvalidOptionsError(component, `invalid receive options: ${formatIssues(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return {
    maxMessages: parsed.data.maxMessages ?? limits.maxMessages,
    waitTimeSeconds: parsed.data.waitTimeSeconds ?? limits.maxWaitTimeSeconds,
    visibilityTimeoutSeconds: parsed.data.visibilityTimeoutSeconds,
    signal: parsed.data.signal,
  };
}

/** Validates a visibility timeout given to `changeVisibility`: an integer from 0 to `maxSeconds`. */
export function assertVisibilityTimeout(seconds: number, component: string, maxSeconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > maxSeconds) {
    throw new InvalidOptionsError(
      component,
      `visibility timeout must be an integer from 0 to ${maxSeconds} seconds, got ${seconds}`,
    );
  }
}
