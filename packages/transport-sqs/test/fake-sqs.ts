import { randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityCommand,
  type ChangeMessageVisibilityCommandInput,
  DeleteMessageBatchCommand,
  type DeleteMessageBatchCommandInput,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
} from '@aws-sdk/client-sqs';
import { InvalidReceiptError } from '@facerec/framework';
import { InMemoryQueueTransport, ManualClock } from '@facerec/transport-memory';
import { serviceError, sqs } from './helpers.js';

type Entries = SendMessageBatchCommandInput['Entries'] | DeleteMessageBatchCommandInput['Entries'];

/** What SQS checks of every batch request: 1–10 entries with distinct, well-formed ids. */
function checkBatch(entries: Entries): void {
  if (!entries?.length) throw serviceError('EmptyBatchRequest', 400);
  if (entries.length > 10) throw serviceError('TooManyEntriesInBatchRequest', 400);
  const ids = entries.map((entry) => entry.Id ?? '');
  if (ids.some((id) => !/^[\w-]{1,80}$/.test(id))) throw serviceError('InvalidBatchEntryId', 400);
  if (new Set(ids).size !== ids.length) throw serviceError('BatchEntryIdsNotDistinct', 400);
}

function fromSqsAttributes(attributes: Record<string, MessageAttributeValue> = {}): Record<string, string> {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => {
      if (value.DataType !== 'String' || value.StringValue === undefined) {
        throw serviceError('InvalidParameterValue', 400, { message: `attribute ${name}: not a String` });
      }
      return [name, value.StringValue];
    }),
  );
}

/**
 * A fake SQS behind the SDK client, for tests that need SQS's behaviour rather than canned answers (the
 * Transport conformance suite). The shared `sqs` mock answers `SendMessageBatch`, `ReceiveMessage`,
 * `DeleteMessageBatch` and `ChangeMessageVisibility` from an {@link InMemoryQueueTransport}, which has SQS's
 * semantics (visibility timeout, receive counts, long polling) on a {@link ManualClock}; the fake adds what SQS
 * does on the wire: batch rules, its own MessageIds, `String` attributes, and system attributes such as
 * `ApproximateReceiveCount` only when asked for.
 */
export function installFakeSqs() {
  const clock = new ManualClock(1_000_000);
  const queues = new InMemoryQueueTransport({ clock });
  sqs.reset();

  sqs.on(SendMessageBatchCommand).callsFake(async (input: SendMessageBatchCommandInput) => {
    checkBatch(input.Entries);
    const entries = (input.Entries ?? []).map((entry) => ({
      Id: entry.Id!,
      MessageId: randomUUID(),
      body: entry.MessageBody ?? '',
      attributes: fromSqsAttributes(entry.MessageAttributes),
    }));
    await queues.publish(
      input.QueueUrl!,
      entries.map(({ MessageId, body, attributes }) => ({ id: MessageId, body, attributes })),
    );
    return {
      Successful: entries.map(({ Id, MessageId }) => ({ Id, MessageId, MD5OfMessageBody: '' })),
      Failed: [],
    };
  });

  sqs.on(ReceiveMessageCommand).callsFake(async (input: ReceiveMessageCommandInput) => {
    const received = await queues.receive(input.QueueUrl!, {
      ...(input.MaxNumberOfMessages !== undefined && { maxMessages: input.MaxNumberOfMessages }),
      ...(input.WaitTimeSeconds !== undefined && { waitTimeSeconds: input.WaitTimeSeconds }),
      ...(input.VisibilityTimeout !== undefined && { visibilityTimeoutSeconds: input.VisibilityTimeout }),
    });
    const wantsCount = input.MessageSystemAttributeNames?.some(
      (name) => name === 'All' || name === 'ApproximateReceiveCount',
    );
    const wantsAttributes = input.MessageAttributeNames?.includes('All');
    const messages = received.map(
      (message): Message => ({
        MessageId: message.id,
        ReceiptHandle: message.receipt,
        Body: message.body,
        ...(wantsCount && { Attributes: { ApproximateReceiveCount: String(message.receiveCount) } }),
        ...(wantsAttributes &&
          Object.keys(message.attributes).length > 0 && {
            MessageAttributes: Object.fromEntries(
              Object.entries(message.attributes).map(([name, value]) => [
                name,
                { DataType: 'String', StringValue: value },
              ]),
            ),
          }),
      }),
    );
    return messages.length > 0 ? { Messages: messages } : {};
  });

  sqs.on(DeleteMessageBatchCommand).callsFake(async (input: DeleteMessageBatchCommandInput) => {
    checkBatch(input.Entries);
    const successful: { Id: string }[] = [];
    const failed: { Id: string; Code: string; Message: string; SenderFault: boolean }[] = [];
    for (const entry of input.Entries ?? []) {
      try {
        await queues.acknowledge(input.QueueUrl!, [{ receipt: entry.ReceiptHandle ?? '' }]);
        successful.push({ Id: entry.Id! });
      } catch (error) {
        if (!InvalidReceiptError.isInstance(error)) throw error;
        failed.push({
          Id: entry.Id!,
          Code: 'ReceiptHandleIsInvalid',
          Message: error.message,
          SenderFault: true,
        });
      }
    }
    return { Successful: successful, Failed: failed };
  });

  sqs.on(ChangeMessageVisibilityCommand).callsFake(async (input: ChangeMessageVisibilityCommandInput) => {
    try {
      await queues.changeVisibility(
        input.QueueUrl!,
        { receipt: input.ReceiptHandle ?? '' },
        input.VisibilityTimeout!,
      );
      return {};
    } catch (error) {
      if (!InvalidReceiptError.isInstance(error)) throw error;
      throw serviceError('ReceiptHandleIsInvalid', 400, { message: error.message });
    }
  });

  return { clock, queues };
}
