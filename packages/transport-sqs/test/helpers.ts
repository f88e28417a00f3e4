import {
  type BatchResultErrorEntry,
  type DeleteMessageBatchCommandInput,
  type SendMessageBatchCommandInput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { createSqsTransport, type SqsTransportOptions } from '../src/index.js';

export const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/frames';

/** One mock for every SQSClient, reset by each test file's `beforeEach`. */
export const sqs = mockClient(SQSClient);

/** A transport on a mocked client whose sleeps return at once and are recorded in `delays`. */
export function setup(options: Omit<SqsTransportOptions, 'client' | 'sleep'> = {}) {
  const delays: number[] = [];
  const transport = createSqsTransport({
    client: new SQSClient({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    }),
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...options,
  });
  return { transport, delays };
}

/** An SDK-shaped service error. */
export function serviceError(name: string, status: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} from SQS`), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    ...extra,
  });
}

type BatchInput = SendMessageBatchCommandInput | DeleteMessageBatchCommandInput;

/** A batch answer: every entry succeeds except those `fail` returns an error for. */
export function answer(
  input: BatchInput,
  fail: (
    entry: { MessageBody?: string | undefined; ReceiptHandle?: string | undefined },
    index: number,
  ) => Omit<BatchResultErrorEntry, 'Id'> | undefined = () => undefined,
) {
  const entries = input.Entries ?? [];
  const failed: BatchResultErrorEntry[] = [];
  const successful: { Id: string; MessageId: string; MD5OfMessageBody: string }[] = [];
  entries.forEach((entry, index) => {
    const error = fail(entry, index);
    if (error) failed.push({ Id: entry.Id, ...error });
    else successful.push({ Id: entry.Id!, MessageId: `sqs-${entry.Id}`, MD5OfMessageBody: '' });
  });
  return { Successful: successful, Failed: failed };
}

export const messages = (count: number, prefix = 'msg') =>
  Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}`, body: `{"n":${i}}` }));
