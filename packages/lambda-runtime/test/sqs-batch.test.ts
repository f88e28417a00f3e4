import { InvalidInputError } from '@facerec/framework';
import {
  type QueueRecord,
  recordHandlerOf,
  recordsFromSqsEvent,
  type SqsEvent,
  sqsBatchHandler,
} from '@facerec/lambda-runtime';
import { describe, expect, it } from 'vitest';

const event: SqsEvent = {
  Records: [
    { messageId: 'a', body: '{"n":1}', attributes: { ApproximateReceiveCount: '3' } },
    { messageId: 'b', body: '{"n":2}' },
    { messageId: 'c', body: '{"n":3}', attributes: { ApproximateReceiveCount: 'garbage' } },
  ],
};

describe('SQS adapter of the batch handlers', () => {
  it('turns an SQS event into neutral records, receive count 1 when SQS gives none usable', () => {
    expect(recordsFromSqsEvent(event)).toEqual([
      { id: 'a', body: '{"n":1}', receiveCount: 3 },
      { id: 'b', body: '{"n":2}', receiveCount: 1 },
      { id: 'c', body: '{"n":3}', receiveCount: 1 },
    ]);
  });

  it('refuses an event that is not from SQS with one clear error (no record could be reported failed)', async () => {
    const handler = sqsBatchHandler(async () => ({ failedIds: [] }));
    for (const bad of [
      {},
      null,
      { Records: 'x' },
      { Records: [null] },
      { Records: [{ messageId: 'a', body: 1 }] },
    ]) {
      const error = await handler(bad as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(InvalidInputError.isInstance(error), JSON.stringify(bad)).toBe(true);
      expect((error as Error).message).toMatch(/^not an SQS event: /);
    }
  });

  it('reports the failed ids as batchItemFailures, in order, and exposes the handler it adapts', async () => {
    const seen: (readonly QueueRecord[])[] = [];
    const handleRecords = async (records: readonly QueueRecord[]) => {
      seen.push(records);
      return { failedIds: ['c', 'a'] };
    };
    const handler = sqsBatchHandler(handleRecords);
    expect(await handler(event)).toEqual({
      batchItemFailures: [{ itemIdentifier: 'c' }, { itemIdentifier: 'a' }],
    });
    expect(seen).toEqual([recordsFromSqsEvent(event)]);
    expect(handler.handleRecords).toBe(handleRecords);
    expect(recordHandlerOf(handler)).toBe(handleRecords);
  });

  it('presents records to a handler written against the Lambda types as an SQS event', async () => {
    const events: SqsEvent[] = [];
    const handleRecords = recordHandlerOf(async (received) => {
      events.push(received);
      return { batchItemFailures: [{ itemIdentifier: 'y' }] };
    });
    const result = await handleRecords([
      { id: 'x', body: 'one', receiveCount: 1 },
      { id: 'y', body: 'two', receiveCount: 4 },
    ]);
    expect(result).toEqual({ failedIds: ['y'] });
    expect(events).toEqual([
      {
        Records: [
          { messageId: 'x', body: 'one', attributes: { ApproximateReceiveCount: '1' } },
          { messageId: 'y', body: 'two', attributes: { ApproximateReceiveCount: '4' } },
        ],
      },
    ]);
    // The round trip through the adapter gives the records back unchanged.
    expect(recordsFromSqsEvent(events[0]!)).toEqual([
      { id: 'x', body: 'one', receiveCount: 1 },
      { id: 'y', body: 'two', receiveCount: 4 },
    ]);
  });
});
