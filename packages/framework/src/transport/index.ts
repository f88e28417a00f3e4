/**
 * What every transport shares, whatever its backend: the message checks (ids, bodies, size as SQS counts
 * it), receive-option validation against the transport's own limits, and the input errors. The transports
 * themselves live in their own packages: `@facerec/transport-memory`, `@facerec/transport-sqs`.
 *
 * @packageDocumentation
 */
export { InvalidMessageError, InvalidReceiptError, MessageTooLargeError } from './errors.js';
export {
  assertVisibilityTimeout,
  messageSizeBytes,
  type PreparedMessage,
  prepareOutboundMessages,
  type ReceiveLimits,
  type ResolvedReceiveOptions,
  resolveReceiveOptions,
} from './message.js';
