import { SendMessageBatchCommand, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { FacerecError, FacerecInputError } from '@facerec/framework';
import { beforeEach, describe, expect, it } from 'vitest';
import { InvalidMessageError, MessageTooLargeError, PublishError } from '../src/index.js';
import { answer, messages, QUEUE, serviceError, setup, sqs } from './helpers.js';

beforeEach(() => {
  sqs.reset();
});

const sent = () =>
  sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input as SendMessageBatchCommandInput);
const bodiesOf = (input: SendMessageBatchCommandInput) => (input.Entries ?? []).map((e) => e.MessageBody);

async function publishError(promise: Promise<unknown>): Promise<PublishError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PublishError);
  return error as PublishError;
}

describe('publish: batching', () => {
  it('sends 25 messages as batches of 10, 10 and 5, in order, with unique entry ids per batch', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input) => answer(input));
    const { transport, delays } = setup();
    const batch = messages(25);
    await transport.publish(QUEUE, batch);
    const calls = sent();
    expect(calls.map((c) => c.Entries?.length)).toEqual([10, 10, 5]);
    expect(calls.flatMap(bodiesOf)).toEqual(batch.map((m) => m.body));
    for (const call of calls) {
      expect(call.QueueUrl).toBe(QUEUE);
      const ids = (call.Entries ?? []).map((e) => e.Id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    }
    expect(delays).toEqual([]);
  });

  it('sends attributes as String message attributes, and none when a message has none', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input) => answer(input));
    const { transport } = setup();
    await transport.publish(QUEUE, [
      { id: 'a', body: 'x', attributes: { kind: 'frame', camera: 'door' } },
      { id: 'b', body: 'y' },
    ]);
    const [a, b] = sent()[0]?.Entries ?? [];
    expect(a?.MessageAttributes).toEqual({
      kind: { DataType: 'String', StringValue: 'frame' },
      camera: { DataType: 'String', StringValue: 'door' },
    });
    expect(b?.MessageAttributes).toBeUndefined();
  });

  it('splits batches further so that no request carries more than maxMessageBytes', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input) => answer(input));
    const { transport } = setup({ maxMessageBytes: 1024 });
    await transport.publish(
      QUEUE,
      Array.from({ length: 10 }, (_, i) => ({ id: `m${i}`, body: 'x'.repeat(300) })),
    );
    expect(sent().map((c) => c.Entries?.length)).toEqual([3, 3, 3, 1]);
  });

  it('keeps to the 256 KiB default for a batch: ten 100 KiB messages go two per request', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input) => answer(input));
    const { transport } = setup();
    const body = 'x'.repeat(100 * 1024);
    await transport.publish(
      QUEUE,
      Array.from({ length: 10 }, (_, i) => ({ id: `m${i}`, body })),
    );
    const calls = sent();
    expect(calls.map((c) => c.Entries?.length)).toEqual([2, 2, 2, 2, 2]);
    for (const call of calls) {
      const bytes = (call.Entries ?? []).reduce((sum, e) => sum + Buffer.byteLength(e.MessageBody ?? ''), 0);
      expect(bytes).toBeLessThanOrEqual(262_144);
    }
  });

  it('sends nothing for an empty list', async () => {
    const { transport } = setup();
    await transport.publish(QUEUE, []);
    expect(sent()).toHaveLength(0);
  });
});

describe('publish: message checks', () => {
  it('refuses a message over the limit with MessageTooLargeError naming id, size and limit; sends nothing', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input) => answer(input));
    const { transport } = setup();
    const big = { id: 'big', body: 'x'.repeat(262_100), attributes: { camera: 'x'.repeat(40) } };
    const error = await transport.publish(QUEUE, [...messages(12), big]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect(FacerecInputError.isInstance(error)).toBe(true);
    // 262100 + 'camera' (6) + 'String' (6) + 40
    expect(error).toMatchObject({ messageId: 'big', sizeBytes: 262_152, limitBytes: 262_144 });
    expect((error as Error).message).toContain('"big"');
    expect(sent()).toHaveLength(0);
  });

  it('counts UTF-8 bytes, not characters, against a configured limit', async () => {
    const { transport } = setup({ maxMessageBytes: 2048 });
    await expect(transport.publish(QUEUE, [{ id: 'u', body: 'é'.repeat(1025) }])).rejects.toMatchObject({
      name: 'MessageTooLargeError',
      sizeBytes: 2050,
      limitBytes: 2048,
    });
    expect(sent()).toHaveLength(0);
  });

  it('refuses duplicate ids and empty bodies before sending anything', async () => {
    const { transport } = setup();
    await expect(
      transport.publish(QUEUE, [
        { id: 'a', body: '1' },
        { id: 'a', body: '2' },
      ]),
    ).rejects.toThrow(InvalidMessageError);
    await expect(transport.publish(QUEUE, [{ body: '' }])).rejects.toThrow(InvalidMessageError);
    expect(sent()).toHaveLength(0);
  });
});

describe('publish: retries', () => {
  it('retries only the entries SQS reports in Failed[], then succeeds', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .callsFakeOnce((input) =>
        answer(input, (_, i) =>
          i === 3 || i === 7
            ? { Code: 'InternalError', SenderFault: false, Message: 'try again' }
            : undefined,
        ),
      )
      .callsFake((input) => answer(input));
    const { transport, delays } = setup();
    await transport.publish(QUEUE, messages(10));
    const calls = sent();
    expect(calls).toHaveLength(2);
    expect(bodiesOf(calls[1]!)).toEqual(['{"n":3}', '{"n":7}']);
    // Entry ids stay unique in the retry, and still map back to the right messages.
    expect(calls[1]?.Entries?.map((e) => e.Id)).toEqual([
      calls[0]?.Entries?.[3]?.Id,
      calls[0]?.Entries?.[7]?.Id,
    ]);
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
  });

  it('after maxAttempts throws PublishError listing each failed id, code and message', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .callsFake((input) =>
        answer(input, (entry) =>
          entry.MessageBody === '{"n":1}' || entry.MessageBody === '{"n":10}'
            ? { Code: 'ServiceUnavailable', SenderFault: false, Message: 'busy' }
            : undefined,
        ),
      );
    const { transport, delays } = setup();
    const error = await publishError(transport.publish(QUEUE, messages(12)));
    // 5 attempts per batch: all 10, then msg-1 alone 4 times; both of the second batch, then msg-10 alone.
    expect(sent().map((c) => c.Entries?.length)).toEqual([10, 1, 1, 1, 1, 2, 1, 1, 1, 1]);
    expect(error.failures.map((f) => f.id)).toEqual(['msg-1', 'msg-10']);
    expect(error.failures[0]).toEqual({
      id: 'msg-1',
      code: 'ServiceUnavailable',
      message: 'busy',
      senderFault: false,
      attempts: 5,
    });
    expect(error.publishedIds).toHaveLength(10);
    expect(error.message).toMatch(
      /Failed to publish 2 of 12 messages to .*frames: msg-1 \(ServiceUnavailable: busy\)/,
    );
    expect(error.code).toBe('PUBLISH_FAILED');
    expect(FacerecError.isInstance(error)).toBe(true);
    expect(FacerecInputError.isInstance(error)).toBe(false);
    expect(delays).toHaveLength(8);
  });

  it('backs off exponentially with jitter: each delay within [ceiling/2, ceiling], ceilings doubling to maxDelayMs', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .callsFake((input) => answer(input, () => ({ Code: 'InternalError', SenderFault: false })));
    const { transport, delays } = setup({ retry: { maxAttempts: 8, baseDelayMs: 100, maxDelayMs: 1000 } });
    const error = await publishError(transport.publish(QUEUE, messages(1)));
    expect(error.failures[0]?.attempts).toBe(8);
    expect(sent()).toHaveLength(8);
    const ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
    expect(delays).toHaveLength(ceilings.length);
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(ceilings[i]! / 2);
      expect(delay).toBeLessThanOrEqual(ceilings[i]!);
    });
    // Growing while under the cap, whatever the jitter: each floor is the previous ceiling.
    for (let i = 1; i < 4; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1000);
  });

  it.each([
    ['ThrottlingException', serviceError('ThrottlingException', 400)],
    ['RequestThrottled', serviceError('RequestThrottled', 403)],
    ['ServiceUnavailable', serviceError('ServiceUnavailable', 503)],
    ['an unnamed 500', serviceError('UnknownError', 500)],
    ['a reset connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
  ])('retries the whole call after %s', async (_, error) => {
    sqs
      .on(SendMessageBatchCommand)
      .rejectsOnce(error)
      .callsFake((input) => answer(input));
    const { transport, delays } = setup();
    await transport.publish(QUEUE, messages(3));
    expect(sent()).toHaveLength(2);
    expect(bodiesOf(sent()[1]!)).toHaveLength(3);
    expect(delays).toHaveLength(1);
  });

  it('does not retry entries with SenderFault; the others are published', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .callsFake((input) =>
        answer(input, (_, i) =>
          i === 2 ? { Code: 'InvalidMessageContents', SenderFault: true, Message: 'bad chars' } : undefined,
        ),
      );
    const { transport, delays } = setup();
    const error = await publishError(transport.publish(QUEUE, messages(4)));
    expect(sent()).toHaveLength(1);
    expect(delays).toEqual([]);
    expect(error.failures).toEqual([
      { id: 'msg-2', code: 'InvalidMessageContents', message: 'bad chars', senderFault: true, attempts: 1 },
    ]);
    expect(error.publishedIds).toEqual(['msg-0', 'msg-1', 'msg-3']);
  });

  it('stops at a call error that retrying cannot fix, reporting every message with the cause', async () => {
    const denied = serviceError('QueueDoesNotExist', 400);
    sqs.on(SendMessageBatchCommand).rejects(denied);
    const { transport, delays } = setup();
    const error = await publishError(transport.publish(QUEUE, messages(15)));
    expect(sent()).toHaveLength(1);
    expect(delays).toEqual([]);
    expect(error.cause).toBe(denied);
    expect(error.failures).toHaveLength(15);
    expect(error.failures[0]).toMatchObject({ id: 'msg-0', code: 'QueueDoesNotExist', attempts: 1 });
    expect(error.failures[14]).toMatchObject({ id: 'msg-14', code: 'QueueDoesNotExist', attempts: 0 });
    expect(error.failures[14]?.message).toMatch(/not sent/);
  });

  it('gives up on a call that stays throttled after maxAttempts', async () => {
    sqs.on(SendMessageBatchCommand).rejects(serviceError('ThrottlingException', 400));
    const { transport, delays } = setup({ retry: { maxAttempts: 3 } });
    const error = await publishError(transport.publish(QUEUE, messages(2)));
    expect(sent()).toHaveLength(3);
    expect(delays).toHaveLength(2);
    expect(error.failures.map((f) => [f.id, f.code, f.attempts])).toEqual([
      ['msg-0', 'ThrottlingException', 3],
      ['msg-1', 'ThrottlingException', 3],
    ]);
  });

  it('retries an entry SQS left out of both Successful and Failed', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .callsFakeOnce((input: SendMessageBatchCommandInput) => {
        const full = answer(input);
        return { Successful: full.Successful.slice(1), Failed: [] };
      })
      .callsFake((input) => answer(input));
    const { transport } = setup();
    await transport.publish(QUEUE, messages(3));
    expect(bodiesOf(sent()[1]!)).toEqual(['{"n":0}']);
  });
});
