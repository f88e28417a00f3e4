import {
  DisposedError,
  FacerecInputError,
  InvalidMessageError,
  InvalidOptionsError,
  InvalidReceiptError,
  MessageTooLargeError,
  SPECIFICATION_VERSION,
} from '@facerec/framework';
import { describe, expect, it } from 'vitest';
import {
  type Clock,
  type DeadLettered,
  IN_MEMORY_QUEUE_LIMITS,
  InMemoryQueueTransport,
  ManualClock,
  systemClock,
} from '../src/index.js';

function setup(options: ConstructorParameters<typeof InMemoryQueueTransport>[0] = {}) {
  const clock = new ManualClock(1_000_000);
  const transport = new InMemoryQueueTransport({ clock, ...options });
  return { clock, transport };
}

const bodies = (count: number, prefix = 'm') =>
  Array.from({ length: count }, (_, i) => ({ id: `${prefix}${i}`, body: `body ${i}` }));

/** Settles microtasks so that a promise resolved by a timer callback is observable. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

function track<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** Advances `clock` to 1 ms before `ms` from now, checks `poll` is still pending then, and advances the last ms. */
async function advancePast(
  clock: ManualClock,
  ms: number,
  poll: { readonly settled: boolean },
): Promise<void> {
  clock.advance(ms - 1);
  await flush();
  expect(poll.settled).toBe(false);
  clock.advance(1);
  await flush();
}

describe('InMemoryQueueTransport: delivery', () => {
  it('delivers published messages with their id, body, attributes and a receive count of 1', async () => {
    const { transport } = setup();
    expect(transport.specificationVersion).toBe(SPECIFICATION_VERSION);
    await transport.publish('jobs', [
      { id: 'a', body: '{"frame":1}', attributes: { kind: 'frame' } },
      { body: 'no id' },
    ]);
    expect(transport.depth('jobs')).toBe(2);
    const received = await transport.receive('jobs', { waitTimeSeconds: 0 });
    expect(received).toHaveLength(2);
    expect(received[0]).toMatchObject({
      id: 'a',
      body: '{"frame":1}',
      receiveCount: 1,
      attributes: { kind: 'frame' },
    });
    expect(received[1]?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(received[1]?.attributes).toEqual({});
    expect(new Set(received.map((m) => m.receipt)).size).toBe(2);
    expect(transport.depth('jobs')).toBe(0);
    expect(transport.inFlight('jobs')).toBe(2);
  });

  it('returns at most maxMessages (default 10), in arrival order', async () => {
    const { transport } = setup();
    await transport.publish('jobs', bodies(25));
    const first = await transport.receive('jobs', { waitTimeSeconds: 0 });
    const second = await transport.receive('jobs', { waitTimeSeconds: 0, maxMessages: 3 });
    const rest = await transport.receive('jobs', { waitTimeSeconds: 0 });
    expect(first.map((m) => m.id)).toEqual(bodies(10).map((m) => m.id));
    expect(second.map((m) => m.id)).toEqual(['m10', 'm11', 'm12']);
    expect(rest.map((m) => m.id)).toEqual([
      'm13',
      'm14',
      'm15',
      'm16',
      'm17',
      'm18',
      'm19',
      'm20',
      'm21',
      'm22',
    ]);
    expect(transport.depth('jobs')).toBe(2);
    expect(transport.inFlight('jobs')).toBe(23);
  });

  it('keeps queues apart and creates them on first use', async () => {
    const { transport } = setup();
    expect(transport.depth('never-used')).toBe(0);
    await transport.publish('a', bodies(1, 'a'));
    await transport.publish('b', bodies(2, 'b'));
    expect((await transport.receive('b', { waitTimeSeconds: 0 })).map((m) => m.id)).toEqual(['b0', 'b1']);
    expect(transport.depth('a')).toBe(1);
  });
});

describe('InMemoryQueueTransport: visibility timeout and redelivery', () => {
  it('hides a received message for the queue visibility timeout (default 30 s), then redelivers it', async () => {
    const { clock, transport } = setup();
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    const [first] = await transport.receive('jobs', { waitTimeSeconds: 0 });
    clock.advance(29_999);
    expect(await transport.receive('jobs', { waitTimeSeconds: 0 })).toEqual([]);
    expect(transport.inFlight('jobs')).toBe(1);
    clock.advance(1);
    expect(transport.depth('jobs')).toBe(1);
    const [second] = await transport.receive('jobs', { waitTimeSeconds: 0 });
    expect(second).toMatchObject({ id: 'x', receiveCount: 2 });
    expect(second?.receipt).not.toBe(first?.receipt);
  });

  it('uses the configured visibility timeout, and a per-receive override', async () => {
    const { clock, transport } = setup({ queues: { slow: { visibilityTimeoutSeconds: 5 } } });
    await transport.publish('slow', [{ id: 'x', body: 'x' }]);
    await transport.receive('slow', { waitTimeSeconds: 0 });
    clock.advance(5_000);
    const [again] = await transport.receive('slow', { waitTimeSeconds: 0, visibilityTimeoutSeconds: 60 });
    expect(again?.receiveCount).toBe(2);
    clock.advance(59_999);
    expect(transport.inFlight('slow')).toBe(1);
    clock.advance(1);
    expect((await transport.receive('slow', { waitTimeSeconds: 0 }))[0]?.receiveCount).toBe(3);
  });

  it('applies queueDefaults to queues created on demand', async () => {
    const { clock, transport } = setup({ queueDefaults: { visibilityTimeoutSeconds: 2 } });
    await transport.publish('any', [{ body: 'x' }]);
    await transport.receive('any', { waitTimeSeconds: 0 });
    clock.advance(2_000);
    expect(transport.depth('any')).toBe(1);
  });
});

describe('InMemoryQueueTransport: acknowledge', () => {
  it('deletes acknowledged messages for good', async () => {
    const { clock, transport } = setup();
    await transport.publish('jobs', bodies(3));
    const received = await transport.receive('jobs', { waitTimeSeconds: 0 });
    await transport.acknowledge('jobs', received.slice(0, 2));
    clock.advance(30_000);
    const again = await transport.receive('jobs', { waitTimeSeconds: 0 });
    expect(again.map((m) => [m.id, m.receiveCount])).toEqual([['m2', 2]]);
    await transport.acknowledge('jobs', again);
    clock.advance(60_000);
    expect(transport.depth('jobs') + transport.inFlight('jobs')).toBe(0);
  });

  it('ignores a stale receipt from an earlier delivery, as SQS does', async () => {
    const { clock, transport } = setup();
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    const [first] = await transport.receive('jobs', { waitTimeSeconds: 0 });
    clock.advance(30_000);
    const [second] = await transport.receive('jobs', { waitTimeSeconds: 0 });
    await transport.acknowledge('jobs', [first!]);
    expect(transport.inFlight('jobs')).toBe(1);
    await transport.acknowledge('jobs', [second!]);
    expect(transport.inFlight('jobs')).toBe(0);
    // Acknowledging an already deleted message is not an error either.
    await expect(transport.acknowledge('jobs', [second!])).resolves.toBeUndefined();
  });

  it('deletes with the latest receipt even after the visibility timeout expired, if not received again', async () => {
    const { clock, transport } = setup();
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    const [first] = await transport.receive('jobs', { waitTimeSeconds: 0 });
    clock.advance(45_000);
    await transport.acknowledge('jobs', [first!]);
    expect(await transport.receive('jobs', { waitTimeSeconds: 0 })).toEqual([]);
  });

  it('refuses receipts it never issued, or issued for another queue or by another transport', async () => {
    const { transport } = setup();
    const other = setup().transport;
    await transport.publish('a', [{ body: 'x' }]);
    await other.publish('a', [{ body: 'x' }]);
    const [fromA] = await transport.receive('a', { waitTimeSeconds: 0 });
    const [fromOther] = await other.receive('a', { waitTimeSeconds: 0 });
    await expect(transport.acknowledge('a', [{ receipt: 'garbage' }])).rejects.toThrow(InvalidReceiptError);
    await expect(transport.acknowledge('b', [fromA!])).rejects.toThrow(/issued for queue "a"/);
    await expect(transport.acknowledge('a', [fromOther!])).rejects.toThrow(/not a receipt issued by this/);
    // A bad receipt in the list deletes nothing, not even the good ones before it.
    await expect(transport.acknowledge('a', [fromA!, { receipt: 'garbage' }])).rejects.toThrow(
      InvalidReceiptError,
    );
    expect(transport.inFlight('a')).toBe(1);
  });
});

describe('InMemoryQueueTransport: dead-letter queue', () => {
  it('moves a message to the dead-letter queue after maxReceiveCount deliveries instead of delivering it again', async () => {
    const moved: DeadLettered[] = [];
    const { clock, transport } = setup({
      queues: { jobs: { visibilityTimeoutSeconds: 10, maxReceiveCount: 3, deadLetterQueue: 'jobs-dlq' } },
      onDeadLetter: (m) => moved.push(m),
    });
    await transport.publish('jobs', [{ id: 'poison', body: 'boom', attributes: { kind: 'frame' } }]);
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [message] = await transport.receive('jobs', { waitTimeSeconds: 0 });
      counts.push(message!.receiveCount);
      clock.advance(10_000);
    }
    expect(counts).toEqual([1, 2, 3]);
    expect(transport.depth('jobs')).toBe(1); // as in SQS, moved by the next receive, not by the clock
    expect(await transport.receive('jobs', { waitTimeSeconds: 0 })).toEqual([]);
    expect(transport.depth('jobs') + transport.inFlight('jobs')).toBe(0);
    expect(transport.depth('jobs-dlq')).toBe(1);
    // Told once, after the move (what `facerec serve` logs and counts).
    expect(moved).toEqual([
      {
        queue: 'jobs',
        deadLetterQueue: 'jobs-dlq',
        messages: [{ id: 'poison', body: 'boom', receiveCount: 3 }],
      },
    ]);
    const [dead] = await transport.receive('jobs-dlq', { waitTimeSeconds: 0 });
    expect(dead).toMatchObject({
      id: 'poison',
      body: 'boom',
      attributes: { kind: 'frame' },
      receiveCount: 4,
    });
  });

  it('delivers the rest of the batch while redriving a poison message', async () => {
    const { clock, transport } = setup({ queues: { jobs: { maxReceiveCount: 1, deadLetterQueue: 'dlq' } } });
    await transport.publish('jobs', [{ id: 'poison', body: 'p' }]);
    await transport.receive('jobs', { waitTimeSeconds: 0 });
    clock.advance(30_000);
    await transport.publish('jobs', [{ id: 'fresh', body: 'f' }]);
    const received = await transport.receive('jobs', { waitTimeSeconds: 0 });
    expect(received.map((m) => m.id)).toEqual(['fresh']);
    expect(transport.depth('dlq')).toBe(1);
  });

  it('wakes a long poll on the dead-letter queue when a message is moved there', async () => {
    const { clock, transport } = setup({
      queues: { jobs: { visibilityTimeoutSeconds: 5, maxReceiveCount: 1, deadLetterQueue: 'dlq' } },
    });
    await transport.publish('jobs', [{ id: 'poison', body: 'p' }]);
    await transport.receive('jobs', { waitTimeSeconds: 0 });
    const dlqPoll = track(transport.receive('dlq', { waitTimeSeconds: 20 }));
    clock.advance(5_000);
    await transport.receive('jobs', { waitTimeSeconds: 0 });
    await flush();
    expect(dlqPoll.value?.map((m) => m.id)).toEqual(['poison']);
  });

  it('without a dead-letter queue, redelivers past maxReceiveCount (as SQS without a redrive policy)', async () => {
    const { clock, transport } = setup({ queues: { jobs: { maxReceiveCount: 2 } } });
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    let last = 0;
    for (let i = 0; i < 4; i++) {
      last = (await transport.receive('jobs', { waitTimeSeconds: 0 }))[0]!.receiveCount;
      clock.advance(30_000);
    }
    expect(last).toBe(4);
  });

  it('applies configureQueue to an existing queue and refuses redrive cycles', async () => {
    const { clock, transport } = setup();
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    transport.configureQueue('jobs', { maxReceiveCount: 1, deadLetterQueue: 'dlq' });
    await transport.receive('jobs', { waitTimeSeconds: 0 });
    clock.advance(30_000);
    await transport.receive('jobs', { waitTimeSeconds: 0 });
    expect(transport.depth('dlq')).toBe(1);
    expect(() => transport.configureQueue('dlq', { deadLetterQueue: 'jobs' })).toThrow(
      /cycle: "dlq" → "jobs" → "dlq"/,
    );
    expect(() => transport.configureQueue('self', { deadLetterQueue: 'self' })).toThrow(InvalidOptionsError);
    expect(() => setup({ queues: { a: { deadLetterQueue: 'b' }, b: { deadLetterQueue: 'a' } } })).toThrow(
      /cycle/,
    );
  });
});

describe('InMemoryQueueTransport: long polling', () => {
  it('waits, then resolves as soon as a message is published, without the clock moving', async () => {
    const { transport } = setup();
    const poll = track(transport.receive('jobs', { waitTimeSeconds: 20 }));
    await flush();
    expect(poll.settled).toBe(false);
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    await flush();
    expect(poll.value?.map((m) => m.id)).toEqual(['x']);
    expect(transport.inFlight('jobs')).toBe(1);
  });

  it('resolves with [] when waitTimeSeconds pass with nothing to deliver', async () => {
    const { clock, transport } = setup();
    const poll = track(transport.receive('jobs', { waitTimeSeconds: 5 }));
    await advancePast(clock, 5_000, poll);
    expect(poll.value).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('returns at once with waitTimeSeconds 0 (short poll)', async () => {
    const { transport } = setup();
    expect(await transport.receive('jobs', { waitTimeSeconds: 0 })).toEqual([]);
  });

  it('resolves when an unacknowledged message becomes visible again during the wait', async () => {
    const { clock, transport } = setup({ queues: { jobs: { visibilityTimeoutSeconds: 8 } } });
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    await transport.receive('jobs', { waitTimeSeconds: 0 });
    clock.advance(5_000);
    const poll = track(transport.receive('jobs', { waitTimeSeconds: 20 }));
    await advancePast(clock, 3_000, poll);
    expect(poll.value?.map((m) => [m.id, m.receiveCount])).toEqual([['x', 2]]);
  });

  it("serves a message that becomes visible while a long poll starts, not at the poll's deadline", async () => {
    // The clock moves between the poll's first look (not visible yet) and the arming of its timer (visible):
    // a real clock does that under load. Tried at each offset around the moment, so that whichever read falls
    // on it, one case has the message turn visible between the two.
    for (let before = 1; before <= 6; before++) {
      const manual = new ManualClock(1_000_000);
      let ticking = false;
      let drift = 0;
      const clock: Clock = {
        now: () => manual.now() + (ticking ? ++drift : drift),
        setTimeout: (callback, ms) => manual.setTimeout(callback, ms),
        clearTimeout: (handle) => manual.clearTimeout(handle),
      };
      const transport = new InMemoryQueueTransport({
        clock,
        queues: { jobs: { visibilityTimeoutSeconds: 1 } },
      });
      await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
      await transport.receive('jobs', { waitTimeSeconds: 0 });
      manual.advance(1_000 - before);
      ticking = true;
      const poll = track(transport.receive('jobs', { waitTimeSeconds: 20 }));
      ticking = false;
      manual.advance(10);
      await flush();
      expect(
        poll.value?.map((m) => [m.id, m.receiveCount]),
        `${before} ms before`,
      ).toEqual([['x', 2]]);
    }
  });

  it('serves waiting polls oldest first, each up to its maxMessages', async () => {
    const { transport } = setup();
    const first = track(transport.receive('jobs', { maxMessages: 2 }));
    const second = track(transport.receive('jobs', { maxMessages: 10 }));
    await transport.publish('jobs', bodies(5));
    await flush();
    expect(first.value?.map((m) => m.id)).toEqual(['m0', 'm1']);
    expect(second.value?.map((m) => m.id)).toEqual(['m2', 'm3', 'm4']);
  });

  it('rejects with the abort reason when the signal aborts, and no longer takes messages', async () => {
    const { transport } = setup();
    const controller = new AbortController();
    const poll = transport.receive('jobs', { signal: controller.signal });
    controller.abort();
    await expect(poll).rejects.toMatchObject({ name: 'AbortError' });
    await transport.publish('jobs', [{ body: 'x' }]);
    expect(transport.depth('jobs')).toBe(1);
  });

  it('rejects at once for a signal that is already aborted', async () => {
    const { transport } = setup();
    await transport.publish('jobs', [{ body: 'x' }]);
    await expect(transport.receive('jobs', { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(transport.depth('jobs')).toBe(1);
  });

  it('works on the real clock', async () => {
    const transport = new InMemoryQueueTransport({ clock: systemClock });
    const started = Date.now();
    const poll = transport.receive('jobs', { waitTimeSeconds: 1 });
    setTimeout(() => void transport.publish('jobs', [{ id: 'late', body: 'x' }]), 20);
    expect((await poll).map((m) => m.id)).toEqual(['late']);
    expect(Date.now() - started).toBeLessThan(900);
    await transport.close();
  });
});

describe('InMemoryQueueTransport: changeVisibility', () => {
  it('makes a message visible at once with 0, waking a waiting poll', async () => {
    const { transport } = setup();
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    const [message] = await transport.receive('jobs', { waitTimeSeconds: 0 });
    const poll = track(transport.receive('jobs', { waitTimeSeconds: 20 }));
    await transport.changeVisibility('jobs', message!, 0);
    await flush();
    expect(poll.value?.map((m) => [m.id, m.receiveCount])).toEqual([['x', 2]]);
  });

  it('extends the visibility timeout from now', async () => {
    const { clock, transport } = setup();
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    const [message] = await transport.receive('jobs', { waitTimeSeconds: 0 });
    clock.advance(20_000);
    await transport.changeVisibility('jobs', message!, 60);
    clock.advance(59_999);
    expect(transport.inFlight('jobs')).toBe(1);
    clock.advance(1);
    expect(transport.depth('jobs')).toBe(1);
  });

  it('refuses a stale receipt, an expired delivery and an out-of-range timeout', async () => {
    const { clock, transport } = setup();
    await transport.publish('jobs', [{ id: 'x', body: 'x' }]);
    const [first] = await transport.receive('jobs', { waitTimeSeconds: 0 });
    await expect(transport.changeVisibility('jobs', first!, 43_201)).rejects.toThrow(InvalidOptionsError);
    clock.advance(30_000);
    await expect(transport.changeVisibility('jobs', first!, 10)).rejects.toThrow(/not in flight/);
    await transport.receive('jobs', { waitTimeSeconds: 0 });
    await expect(transport.changeVisibility('jobs', first!, 10)).rejects.toThrow(/received again/);
  });
});

describe('InMemoryQueueTransport: close', () => {
  it('resolves pending long polls with [] and refuses publish and receive afterwards', async () => {
    const { clock, transport } = setup();
    await transport.publish('other', [{ body: 'x' }]);
    const [inFlight] = await transport.receive('other', { waitTimeSeconds: 0 });
    const polls = [transport.receive('a'), transport.receive('b', { waitTimeSeconds: 3 })];
    await transport.close();
    expect(await Promise.all(polls)).toEqual([[], []]);
    expect(clock.pendingTimers).toBe(0);
    await expect(transport.publish('a', [{ body: 'x' }])).rejects.toThrow(DisposedError);
    await expect(transport.receive('a')).rejects.toThrow(DisposedError);
    // In-flight work can still be acknowledged during shutdown.
    await transport.acknowledge('other', [inFlight!]);
    expect(transport.inFlight('other')).toBe(0);
  });
});

describe('InMemoryQueueTransport: message checks', () => {
  it('refuses a message over maxMessageBytes, naming its id, size and the limit, and enqueues nothing', async () => {
    const { transport } = setup();
    const big = 'é'.repeat(IN_MEMORY_QUEUE_LIMITS.defaultMaxMessageBytes / 2) + 'x'; // 2 bytes per é in UTF-8
    const error = await transport
      .publish('jobs', [
        { id: 'ok', body: 'fine' },
        { id: 'big', body: big },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect(MessageTooLargeError.isInstance(error)).toBe(true);
    expect(FacerecInputError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ messageId: 'big', sizeBytes: 262_145, limitBytes: 262_144 });
    expect((error as Error).message).toMatch(/"big" is 262145 bytes.*262144/);
    expect(transport.depth('jobs')).toBe(0);
  });

  it('counts attributes as SQS does and accepts a message exactly at the limit', async () => {
    const { transport } = setup({ maxMessageBytes: 100 });
    const attributes = { kind: 'frame' }; // 4 + 6 ('String') + 5 = 15 bytes
    await transport.publish('jobs', [{ id: 'edge', body: 'x'.repeat(85), attributes }]);
    await expect(
      transport.publish('jobs', [{ id: 'over', body: 'x'.repeat(86), attributes }]),
    ).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE', sizeBytes: 101, limitBytes: 100 });
    expect(transport.depth('jobs')).toBe(1);
  });

  it('refuses duplicate ids within one call and empty bodies', async () => {
    const { transport } = setup();
    await expect(
      transport.publish('jobs', [
        { id: 'a', body: '1' },
        { id: 'a', body: '2' },
      ]),
    ).rejects.toThrow(InvalidMessageError);
    await expect(transport.publish('jobs', [{ body: '' }])).rejects.toThrow(/#0.*non-empty/);
    expect(transport.depth('jobs')).toBe(0);
  });
});

describe('InMemoryQueueTransport: options', () => {
  it('rejects unknown and out-of-range options, naming the component and the key', () => {
    expect(() => new InMemoryQueueTransport({ visibility: 3 } as never)).toThrow(
      /InMemoryQueueTransport: .*visibility/,
    );
    expect(() => new InMemoryQueueTransport({ queues: { q: { maxReceiveCount: 0 } } })).toThrow(
      /queues\.q\.maxReceiveCount/,
    );
    expect(() => new InMemoryQueueTransport({ queueDefaults: { deadLetterQueue: 'x' } as never })).toThrow(
      InvalidOptionsError,
    );
    expect(() => new InMemoryQueueTransport({ maxMessageBytes: 2_000_000 })).toThrow(/maxMessageBytes/);
  });

  it('validates receive options against its limits (SQS ranges)', async () => {
    const { transport } = setup();
    await expect(transport.receive('jobs', { maxMessages: 11 })).rejects.toThrow(/maxMessages/);
    await expect(transport.receive('jobs', { waitTimeSeconds: 21 })).rejects.toThrow(/waitTimeSeconds/);
    await expect(transport.receive('jobs', { maxMessage: 1 } as never)).rejects.toThrow(InvalidOptionsError);
    await expect(transport.receive('', {})).rejects.toThrow(/queue name/);
  });
});

describe('ManualClock', () => {
  it('fires due timers in order, with now() at each due time, and only those due', () => {
    const clock = new ManualClock(100);
    const fired: [string, number][] = [];
    clock.setTimeout(() => fired.push(['b', clock.now()]), 20);
    clock.setTimeout(() => {
      fired.push(['a', clock.now()]);
      clock.setTimeout(() => fired.push(['nested', clock.now()]), 5);
    }, 10);
    const cancelled = clock.setTimeout(() => fired.push(['x', clock.now()]), 1);
    clock.clearTimeout(cancelled);
    clock.setTimeout(() => fired.push(['late', clock.now()]), 100);
    clock.advance(50);
    expect(fired).toEqual([
      ['a', 110],
      ['nested', 115],
      ['b', 120],
    ]);
    expect(clock.now()).toBe(150);
    expect(clock.pendingTimers).toBe(1);
  });
});
