import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  type DeleteMessageBatchCommandInput,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { InvalidOptionsError } from '@facerec/framework';
import { beforeEach, describe, expect, it } from 'vitest';
import { AcknowledgeError, InvalidReceiptError, SqsRequestError } from '../src/index.js';
import { answer, QUEUE, serviceError, setup, sqs } from './helpers.js';

beforeEach(() => {
  sqs.reset();
});

const receiveInputs = () => sqs.commandCalls(ReceiveMessageCommand).map((call) => call.args[0].input);
const deleteInputs = () =>
  sqs
    .commandCalls(DeleteMessageBatchCommand)
    .map((call) => call.args[0].input as DeleteMessageBatchCommandInput);

describe('receive', () => {
  it('long-polls for 20 s and up to 10 messages by default, asking for the receive count, the send time and all attributes', async () => {
    sqs.on(ReceiveMessageCommand).resolves({});
    const { transport } = setup();
    expect(await transport.receive(QUEUE)).toEqual([]);
    expect(receiveInputs()).toEqual([
      {
        QueueUrl: QUEUE,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 20,
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
        MessageAttributeNames: ['All'],
      },
    ]);
  });

  it('passes maxMessages, waitTimeSeconds and visibilityTimeoutSeconds through', async () => {
    sqs.on(ReceiveMessageCommand).resolves({ Messages: [] });
    const { transport } = setup();
    await transport.receive(QUEUE, { maxMessages: 3, waitTimeSeconds: 0, visibilityTimeoutSeconds: 120 });
    expect(receiveInputs()[0]).toMatchObject({
      MaxNumberOfMessages: 3,
      WaitTimeSeconds: 0,
      VisibilityTimeout: 120,
    });
  });

  it('maps messages: id, body, receipt, receive count, send time and attributes (String, Number and Binary)', async () => {
    sqs.on(ReceiveMessageCommand).resolves({
      Messages: [
        {
          MessageId: 'sqs-id-1',
          ReceiptHandle: 'receipt-1',
          Body: '{"frame":1}',
          Attributes: { ApproximateReceiveCount: '3', SentTimestamp: '1764892800123' },
          MessageAttributes: {
            kind: { DataType: 'String', StringValue: 'frame' },
            width: { DataType: 'Number', StringValue: '640' },
            blob: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 3]) },
          },
        },
        { MessageId: 'sqs-id-2', ReceiptHandle: 'receipt-2', Body: 'plain' },
      ],
    });
    const { transport } = setup();
    expect(await transport.receive(QUEUE)).toEqual([
      {
        id: 'sqs-id-1',
        body: '{"frame":1}',
        receipt: 'receipt-1',
        receiveCount: 3,
        attributes: { kind: 'frame', width: '640', blob: 'AQID' },
        sentAt: 1764892800123,
      },
      { id: 'sqs-id-2', body: 'plain', receipt: 'receipt-2', receiveCount: 1, attributes: {} },
    ]);
  });

  it('rejects with the abort reason when the signal aborts during the long poll', async () => {
    sqs.on(ReceiveMessageCommand).callsFake(() => new Promise(() => undefined));
    const { transport } = setup();
    const controller = new AbortController();
    const poll = transport.receive(QUEUE, { signal: controller.signal });
    setTimeout(() => controller.abort(), 5);
    await expect(poll).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects at once, sending nothing, for a signal already aborted', async () => {
    sqs.on(ReceiveMessageCommand).resolves({});
    const { transport } = setup();
    await expect(transport.receive(QUEUE, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(receiveInputs()).toHaveLength(0);
  });

  it('retries throttling, and wraps an error it cannot retry in SqsRequestError', async () => {
    sqs
      .on(ReceiveMessageCommand)
      .rejectsOnce(serviceError('ThrottlingException', 400))
      .resolvesOnce({ Messages: [{ MessageId: 'a', ReceiptHandle: 'r', Body: 'b' }] })
      .rejects(serviceError('AccessDenied', 403));
    const { transport, delays } = setup();
    expect((await transport.receive(QUEUE)).map((m) => m.id)).toEqual(['a']);
    expect(delays).toHaveLength(1);
    const error = await transport.receive(QUEUE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SqsRequestError);
    expect(error).toMatchObject({ operation: 'ReceiveMessage', queue: QUEUE, attempts: 1 });
    expect((error as Error).message).toMatch(/AccessDenied/);
    expect(receiveInputs()).toHaveLength(3);
  });

  it('validates receive options', async () => {
    const { transport } = setup();
    await expect(transport.receive(QUEUE, { maxMessages: 0 })).rejects.toThrow(InvalidOptionsError);
    await expect(transport.receive(QUEUE, { waitTimeSeconds: 25 })).rejects.toThrow(
      /@facerec\/transport-sqs: .*waitTimeSeconds/,
    );
    await expect(transport.receive('', {})).rejects.toThrow(/queue URL/);
  });
});

describe('acknowledge', () => {
  const received = (count: number) => Array.from({ length: count }, (_, i) => ({ receipt: `receipt-${i}` }));

  it('deletes in batches of 10 with unique entry ids', async () => {
    sqs.on(DeleteMessageBatchCommand).callsFake((input) => answer(input));
    const { transport } = setup();
    await transport.acknowledge(QUEUE, received(23));
    const calls = deleteInputs();
    expect(calls.map((c) => c.Entries?.length)).toEqual([10, 10, 3]);
    expect(calls.flatMap((c) => c.Entries?.map((e) => e.ReceiptHandle))).toEqual(
      received(23).map((m) => m.receipt),
    );
    for (const call of calls) {
      const ids = call.Entries?.map((e) => e.Id);
      expect(new Set(ids).size).toBe(ids?.length);
    }
  });

  it('sends nothing for an empty list', async () => {
    const { transport } = setup();
    await transport.acknowledge(QUEUE, []);
    expect(deleteInputs()).toHaveLength(0);
  });

  it('retries only the failed entries, then succeeds', async () => {
    sqs
      .on(DeleteMessageBatchCommand)
      .callsFakeOnce((input) =>
        answer(input, (entry) =>
          entry.ReceiptHandle === 'receipt-4' ? { Code: 'InternalError', SenderFault: false } : undefined,
        ),
      )
      .rejectsOnce(serviceError('ServiceUnavailable', 503))
      .callsFake((input) => answer(input));
    const { transport, delays } = setup();
    await transport.acknowledge(QUEUE, received(6));
    expect(deleteInputs().map((c) => c.Entries?.map((e) => e.ReceiptHandle))).toEqual([
      received(6).map((m) => m.receipt),
      ['receipt-4'],
      ['receipt-4'],
    ]);
    expect(delays).toHaveLength(2);
  });

  it('reports receipts that could not be deleted, without retrying sender faults', async () => {
    sqs
      .on(DeleteMessageBatchCommand)
      .callsFake((input) =>
        answer(input, (entry) =>
          entry.ReceiptHandle === 'receipt-11'
            ? { Code: 'ReceiptHandleIsInvalid', SenderFault: true, Message: 'bad handle' }
            : entry.ReceiptHandle === 'receipt-2'
              ? { Code: 'InternalError', SenderFault: false, Message: 'oops' }
              : undefined,
        ),
      );
    const { transport, delays } = setup({ retry: { maxAttempts: 2 } });
    const error = await transport.acknowledge(QUEUE, received(12)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcknowledgeError);
    const failures = (error as AcknowledgeError).failures;
    expect(failures).toEqual([
      {
        index: 2,
        receipt: 'receipt-2',
        code: 'InternalError',
        message: 'oops',
        senderFault: false,
        attempts: 2,
      },
      {
        index: 11,
        receipt: 'receipt-11',
        code: 'ReceiptHandleIsInvalid',
        message: 'bad handle',
        senderFault: true,
        attempts: 1,
      },
    ]);
    expect((error as Error).message).toMatch(/Failed to acknowledge 2 of 12 messages/);
    expect(deleteInputs().map((c) => c.Entries?.length)).toEqual([10, 1, 2]);
    expect(delays).toHaveLength(1);
  });
});

describe('changeVisibility', () => {
  it('sends ChangeMessageVisibility, and maps a stale receipt to InvalidReceiptError', async () => {
    sqs.on(ChangeMessageVisibilityCommand).resolvesOnce({}).rejects(serviceError('MessageNotInflight', 400));
    const { transport } = setup();
    await transport.changeVisibility(QUEUE, { receipt: 'r1' }, 0);
    expect(sqs.commandCalls(ChangeMessageVisibilityCommand)[0]?.args[0].input).toEqual({
      QueueUrl: QUEUE,
      ReceiptHandle: 'r1',
      VisibilityTimeout: 0,
    });
    await expect(transport.changeVisibility(QUEUE, { receipt: 'r1' }, 30)).rejects.toThrow(
      InvalidReceiptError,
    );
    await expect(transport.changeVisibility(QUEUE, { receipt: 'r1' }, 50_000)).rejects.toThrow(
      InvalidOptionsError,
    );
  });
});
