import { describe, expect, it } from 'vitest';
import { InvalidInputError, InvalidOptionsError } from '../errors.js';
import { InvalidMessageError, MessageTooLargeError } from './errors.js';
import {
  assertVisibilityTimeout,
  messageSizeBytes,
  prepareOutboundMessages,
  type ReceiveLimits,
  resolveReceiveOptions,
} from './message.js';

const LIMITS: ReceiveLimits = { maxMessages: 4, maxWaitTimeSeconds: 7, maxVisibilityTimeoutSeconds: 60 };

describe('messageSizeBytes', () => {
  it('counts UTF-8 bytes of the body, and name + "String" + value of each attribute', () => {
    expect(messageSizeBytes({ body: 'héllo' })).toBe(6);
    expect(messageSizeBytes({ body: '😀' })).toBe(4);
    expect(messageSizeBytes({ body: 'héllo', attributes: { kind: 'frame' } })).toBe(21);
  });
});

describe('prepareOutboundMessages', () => {
  it('keeps ids, generates missing ones and records each size', () => {
    const prepared = prepareOutboundMessages(
      [{ id: 'a', body: 'xy', attributes: { k: 'v' } }, { body: 'z' }],
      100,
    );
    expect(prepared[0]).toEqual({ id: 'a', body: 'xy', attributes: { k: 'v' }, sizeBytes: 2 + 1 + 6 + 1 });
    expect(prepared[1]?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(prepared[1]?.sizeBytes).toBe(1);
  });

  it('refuses an empty body, a duplicate id and a message over the limit, naming the message', () => {
    expect(() => prepareOutboundMessages([{ body: '' }], 100)).toThrow(/#0.*non-empty/);
    // One message where an array belongs (a TypeError from deep inside before).
    expect(() => prepareOutboundMessages({ body: 'x' } as never, 100)).toThrow(
      new InvalidInputError('publish: messages must be an array (one message: [message]), got object'),
    );
    expect(() =>
      prepareOutboundMessages(
        [
          { id: 'a', body: '1' },
          { id: 'a', body: '2' },
        ],
        100,
      ),
    ).toThrow(InvalidMessageError);
    const error = (() => {
      try {
        return prepareOutboundMessages([{ id: 'big', body: 'x'.repeat(11) }], 10);
      } catch (e) {
        return e;
      }
    })();
    expect(MessageTooLargeError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ messageId: 'big', sizeBytes: 11, limitBytes: 10 });
  });
});

describe('resolveReceiveOptions', () => {
  it("defaults to the transport's largest batch and longest wait", () => {
    expect(resolveReceiveOptions(undefined, 'T', LIMITS)).toEqual({
      maxMessages: 4,
      waitTimeSeconds: 7,
      visibilityTimeoutSeconds: undefined,
      signal: undefined,
    });
  });

  it("checks each option against the transport's own limits, naming the component and the key", () => {
    expect(resolveReceiveOptions({ maxMessages: 4, waitTimeSeconds: 0 }, 'T', LIMITS).maxMessages).toBe(4);
    expect(() => resolveReceiveOptions({ maxMessages: 5 }, 'T', LIMITS)).toThrow(/^T: .*maxMessages/);
    expect(() => resolveReceiveOptions({ waitTimeSeconds: 8 }, 'T', LIMITS)).toThrow(/waitTimeSeconds/);
    expect(() => resolveReceiveOptions({ visibilityTimeoutSeconds: 61 }, 'T', LIMITS)).toThrow(
      /visibilityTimeoutSeconds/,
    );
    expect(() => resolveReceiveOptions({ maxMessage: 1 } as never, 'T', LIMITS)).toThrow(InvalidOptionsError);
  });

  it('checks a visibility timeout given alone against the maximum', () => {
    expect(() => assertVisibilityTimeout(60, 'T', 60)).not.toThrow();
    expect(() => assertVisibilityTimeout(61, 'T', 60)).toThrow(/from 0 to 60 seconds, got 61/);
    expect(() => assertVisibilityTimeout(1.5, 'T', 60)).toThrow(InvalidOptionsError);
  });
});
