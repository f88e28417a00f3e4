/**
 * Errors of `@facerec/transport-sqs`. Failures of SQS itself extend `FacerecError` (5xx); what the caller got
 * wrong (a message too large, a bad receipt, bad options) is a `FacerecInputError` from the framework, which
 * the in-memory transport throws too, so both transports fail the same way on the same input.
 */
import { FacerecError } from '@facerec/framework';

export { InvalidMessageError, InvalidReceiptError, MessageTooLargeError } from '@facerec/framework';

/** Why one message of a `publish` call was not published. */
export interface PublishFailure {
  /** The message's id (the caller's, or the one generated for it). */
  readonly id: string;
  /** SQS's error code (`InternalError`, `InvalidMessageContents`, ...) or the failed call's error name. */
  readonly code: string;
  readonly message: string;
  /**
   * True when SQS blamed the request (`SenderFault`): retrying would not help, so it was not retried.
   * False for service-side and transient failures that were retried until `maxAttempts`.
   */
  readonly senderFault: boolean;
  /** Requests that carried this message; 0 when an earlier batch failed fatally and it was never sent. */
  readonly attempts: number;
}

/** Why one receipt of an `acknowledge` call was not deleted. */
export interface AcknowledgeFailure {
  /** Position of the message in the `acknowledge` call. */
  readonly index: number;
  readonly receipt: string;
  readonly code: string;
  readonly message: string;
  readonly senderFault: boolean;
  readonly attempts: number;
}

const LISTED = 20;

function list<T>(items: readonly T[], describe: (item: T) => string): string {
  const shown = items.slice(0, LISTED).map(describe).join('; ');
  return items.length > LISTED ? `${shown}; and ${items.length - LISTED} more` : shown;
}

/**
 * Some messages of a `publish` call were not published, after retrying those that could succeed. Every
 * other message was published: retry `failures` only, or accept duplicates (SQS is at-least-once anyway).
 */
export class PublishError extends FacerecError {
  static override readonly errorName: string = 'PublishError';
  readonly queue: string;
  readonly failures: readonly PublishFailure[];
  /** Ids of the messages of the same call that were published. */
  readonly publishedIds: readonly string[];
  constructor(
    queue: string,
    failures: readonly PublishFailure[],
    publishedIds: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(
      'PUBLISH_FAILED',
      `Failed to publish ${failures.length} of ${failures.length + publishedIds.length} messages to ${queue}: ${list(
        failures,
        (f) => `${f.id} (${f.code}: ${f.message})`,
      )}`,
      options,
    );
    this.queue = queue;
    this.failures = failures;
    this.publishedIds = publishedIds;
  }
}

/**
 * Some receipts of an `acknowledge` call were not deleted, after retrying; those messages will be delivered
 * again when their visibility timeout expires.
 */
export class AcknowledgeError extends FacerecError {
  static override readonly errorName: string = 'AcknowledgeError';
  readonly queue: string;
  readonly failures: readonly AcknowledgeFailure[];
  constructor(
    queue: string,
    failures: readonly AcknowledgeFailure[],
    total: number,
    options?: { cause?: unknown },
  ) {
    super(
      'ACKNOWLEDGE_FAILED',
      `Failed to acknowledge ${failures.length} of ${total} messages on ${queue}: ${list(
        failures,
        (f) => `#${f.index} receipt ${f.receipt.slice(0, 12)}… (${f.code}: ${f.message})`,
      )}`,
      options,
    );
    this.queue = queue;
    this.failures = failures;
  }
}

/** An SQS call (`ReceiveMessage`, `ChangeMessageVisibility`) failed, after retrying transient errors. */
export class SqsRequestError extends FacerecError {
  static override readonly errorName: string = 'SqsRequestError';
  /** The SQS API operation. */
  readonly operation: string;
  readonly queue: string;
  /** Attempts made, the failing one included. */
  readonly attempts: number;
  constructor(operation: string, queue: string, attempts: number, cause: unknown) {
    super(
      'SQS_REQUEST_FAILED',
      `SQS ${operation} on ${queue} failed after ${attempts} attempt(s): ${describeError(cause)}`,
      { cause },
    );
    this.operation = operation;
    this.queue = queue;
    this.attempts = attempts;
  }
}

/** `Name: message` of an SDK or network error, for error messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${errorCode(error)}: ${error.message}`;
  return String(error);
}

/** The code SQS or Node gave an error: the SDK's `name`, else a Node `code`, else the class name. */
export function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { name, code } = error as { name?: unknown; code?: unknown };
    if (typeof name === 'string' && name !== 'Error') return name;
    if (typeof code === 'string') return code;
    if (typeof name === 'string') return name;
  }
  return 'UnknownError';
}
