import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { OutboundMessage, ReceiveOptions } from '../contracts/transport.js';
import { InvalidInputError, InvalidOptionsError } from '../errors.js';
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

/**
 * A character SQS refuses in a message body or attribute value: anything outside #x9, #xA, #xD, #x20–#xD7FF,
 * #xE000–#xFFFD and #x10000–#x10FFFF (so also a lone surrogate, which the `u` flag reads as one code point).
 */
const REFUSED_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
/** SQS's attribute names: 1–256 of A–Z a–z 0–9 _ - . ; not starting `AWS.`/`Amazon.` (any case), no `..`. */
const ATTRIBUTE_NAME = /^(?!aws\.|amazon\.)(?!.*\.\.)(?![.])(?!.*[.]$)[A-Za-z0-9_.-]{1,256}$/i;
/** Most attributes SQS takes on one message. */
export const MAX_MESSAGE_ATTRIBUTES = 10;

/** Where `text` holds a character SQS refuses: its code point as `U+XXXX` and its index, or undefined. */
function refusedCharacter(text: string): string | undefined {
  const match = REFUSED_CHARACTER.exec(text);
  if (!match) return undefined;
  const code = match[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
  return `U+${code} at index ${match.index}`;
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
 * message fits in `maxMessageBytes`; bodies, attribute names and values hold only what SQS accepts (so a
 * message a local queue takes, SQS takes too).
 *
 * @throws {InvalidMessageError} an empty body, a character SQS refuses (U+FFFE, U+FFFF, most control
 *   characters, a lone surrogate), more than 10 attributes, a bad attribute name, an empty or non-string
 *   attribute value, or a duplicate id.
 * @throws {MessageTooLargeError} a message over `maxMessageBytes`.
 */
export function prepareOutboundMessages(
  messages: readonly OutboundMessage[],
  maxMessageBytes: number,
): PreparedMessage[] {
  if (!Array.isArray(messages)) {
    const got = messages === null ? 'null' : typeof messages;
    throw new InvalidInputError(`publish: messages must be an array (one message: [message]), got ${got}`);
  }
  const seen = new Set<string>();
  return messages.map((message, index) => {
    const label = message.id ?? `#${index}`;
    // SQS rejects empty bodies; refusing them in every transport keeps local runs honest about it.
    if (typeof message.body !== 'string' || message.body.length === 0) {
      throw new InvalidMessageError(label, 'body must be a non-empty string');
    }
    const inBody = refusedCharacter(message.body);
    if (inBody) throw new InvalidMessageError(label, `body holds a character SQS refuses (${inBody})`);
    const attributes = { ...message.attributes };
    const names = Object.keys(attributes);
    if (names.length > MAX_MESSAGE_ATTRIBUTES) {
      throw new InvalidMessageError(
        label,
        `${names.length} attributes; SQS takes at most ${MAX_MESSAGE_ATTRIBUTES}`,
      );
    }
    for (const [name, value] of Object.entries(attributes)) {
      if (!ATTRIBUTE_NAME.test(name)) {
        throw new InvalidMessageError(
          label,
          `attribute name ${JSON.stringify(name.slice(0, 64))} is not one SQS takes (1–256 of A–Z a–z 0–9 _ - ., ` +
            'not starting with AWS. or Amazon., no leading, trailing or double dot)',
        );
      }
      if (typeof value !== 'string' || value.length === 0) {
        throw new InvalidMessageError(label, `attribute "${name}" must have a non-empty string value`);
      }
      const inValue = refusedCharacter(value);
      if (inValue) {
        throw new InvalidMessageError(
          label,
          `attribute "${name}" holds a character SQS refuses (${inValue})`,
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
