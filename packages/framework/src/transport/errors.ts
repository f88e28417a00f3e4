import { FacerecInputError } from '../errors.js';

/*
 * Input errors shared by every Transport, so that the in-memory and the SQS transport fail the same way on
 * the same input.
 */

/**
 * A message whose size (UTF-8 body plus attributes, counted as SQS counts them) exceeds the transport's
 * limit. Thrown before anything is sent, so no message of that `publish` call was published.
 */
export class MessageTooLargeError extends FacerecInputError {
  static override readonly errorName: string = 'MessageTooLargeError';
  /** The offending message's id (the caller's, or the one generated for it). */
  readonly messageId: string;
  /** Its size in bytes, see `messageSizeBytes`. */
  readonly sizeBytes: number;
  /** The transport's `maxMessageBytes`. */
  readonly limitBytes: number;
  constructor(messageId: string, sizeBytes: number, limitBytes: number) {
    super(
      'MESSAGE_TOO_LARGE',
      `Message "${messageId}" is ${sizeBytes} bytes (body and attributes, UTF-8), over the limit of ${limitBytes} bytes; nothing was published`,
    );
    this.messageId = messageId;
    this.sizeBytes = sizeBytes;
    this.limitBytes = limitBytes;
  }
}

/** A message the transport cannot accept: an empty body, a duplicate id within one `publish` call. */
export class InvalidMessageError extends FacerecInputError {
  static override readonly errorName: string = 'InvalidMessageError';
  /** The offending message's id, or its index in the call as `#<index>` when it has no id yet. */
  readonly messageId: string;
  constructor(messageId: string, message: string) {
    super('INVALID_MESSAGE', `Message "${messageId}": ${message}; nothing was published`);
    this.messageId = messageId;
  }
}

/**
 * A receipt this transport did not issue, issued for another queue, or (for `changeVisibility`) one that no
 * longer identifies an in-flight delivery.
 */
export class InvalidReceiptError extends FacerecInputError {
  static override readonly errorName: string = 'InvalidReceiptError';
  readonly receipt: string;
  readonly queue: string;
  constructor(queue: string, receipt: string, reason: string, options?: { cause?: unknown }) {
    super('INVALID_RECEIPT', `Receipt for queue "${queue}" rejected: ${reason}`, options);
    this.queue = queue;
    this.receipt = receipt;
  }
}
