import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OutboundMessage, ReceivedMessage, Transport } from '../contracts/transport.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { FacerecInputError } from '../errors.js';

type Awaitable<T> = T | Promise<T>;

/** One fresh transport for one test of {@link describeTransportConformance}. */
export interface TransportConformanceHarness {
  readonly transport: Transport;
  /**
   * The address of an empty queue for a short name (`jobs`, `other`): the name itself for a local queue, a
   * queue URL for SQS. Different names must give different queues.
   */
  queue(name: string): string;
  /**
   * Lets `ms` milliseconds pass for the transport: advances a fake clock (and lets what falls due run), or
   * waits in real time. The suite calls it only once the calls it started are waiting.
   */
  advance(ms: number): Promise<void>;
  /** Releases what the harness holds (closes the transport, ends pending long polls). */
  dispose?(): Awaitable<void>;
}

// A transport that keeps the contract answers well within this, fake clock or not; one that misses a
// wake-up would otherwise hang the test until vitest's timeout.
const PROMPT_MS = 5_000;
const LATE = Symbol('late');
/** The most time one test lets pass through `advance`: past any visibility timeout a harness sets, to show an acknowledged message never comes back. */
const LONGEST_ADVANCE_MS = 61_000;

/** `promise`'s outcome, or {@link LATE} when it takes longer than {@link PROMPT_MS} of real time. */
async function promptly<T>(promise: Promise<T>): Promise<T | typeof LATE> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), PROMPT_MS);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Lets pending calls reach the point where they wait (microtasks and one turn of the event loop). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function observe<T>(promise: Promise<T>) {
  const state = { settled: false };
  promise.then(
    () => {
      state.settled = true;
    },
    () => {
      state.settled = true;
    },
  );
  return state;
}

const messages = (count: number, prefix: string): OutboundMessage[] =>
  Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}`, body: `{"${prefix}":${i}}` }));

/**
 * The conformance suite every {@link Transport} must pass, on a fresh harness per test: what is published is
 * received with its body and attributes, at most `maxMessages` at a time; an unacknowledged message comes
 * back after the visibility timeout with `receiveCount` one higher, an acknowledged one never does; a bad
 * `publish` (duplicate ids) is refused whole with a `FacerecInputError`; long polls return as soon as a
 * message arrives, end empty when the wait runs out, and give up when their signal aborts.
 *
 * Nothing in it depends on delivery order, on a transport keeping the caller's message ids (SQS assigns its
 * own), or on how fast real time passes: `advance` decides that.
 *
 * Time: the in-memory transport takes a `ManualClock` (from `@facerec/transport-memory`, as below); a
 * transport on real time (a local server) passes `advance: (ms) => new Promise((r) => setTimeout(r, ms))`,
 * and its tests then last as long as the time they let pass (up to 61 s for one of them).
 *
 * @example
 * describeTransportConformance('in-memory queue', () => {
 *   const clock = new ManualClock();
 *   const transport = new InMemoryQueueTransport({ clock });
 *   return {
 *     transport,
 *     queue: (name) => name,
 *     advance: async (ms) => clock.advance(ms),
 *     dispose: () => transport.close(),
 *   };
 * });
 */
export function describeTransportConformance(
  name: string,
  factory: () => Awaitable<TransportConformanceHarness>,
): void {
  // Each test's limit is well past PROMPT_MS, so a missed wake-up fails with the suite's own message, not
  // vitest's timeout (its default, 5 s, equals PROMPT_MS), and past the longest time a test lets pass (61 s),
  // which a harness on real time waits out.
  describe(`Transport conformance: ${name}`, { timeout: LONGEST_ADVANCE_MS + 3 * PROMPT_MS }, () => {
    let harness: TransportConformanceHarness;
    let transport: Transport;
    let jobs: string;
    beforeEach(async () => {
      harness = await factory();
      transport = harness.transport;
      jobs = harness.queue('jobs');
    }, 60_000);
    afterEach(async () => {
      await harness?.dispose?.();
    });

    const advance = async (ms: number) => {
      await settle();
      await harness.advance(ms);
      await settle();
    };
    const receiveNow = (
      queue: string,
      options: { maxMessages?: number; visibilityTimeoutSeconds?: number } = {},
    ) => transport.receive(queue, { ...options, waitTimeSeconds: 0 });
    /** Receives until the queue answers empty, checking that no receive goes over `maxMessages`. */
    const drain = async (queue: string, maxMessages = 10, visibilityTimeoutSeconds = 60) => {
      const all: ReceivedMessage[] = [];
      for (let round = 0; round < 100; round++) {
        const batch = await receiveNow(queue, { maxMessages, visibilityTimeoutSeconds });
        expect(batch.length).toBeLessThanOrEqual(maxMessages);
        if (batch.length === 0) return all;
        all.push(...batch);
      }
      throw new Error(`${queue} still had messages after 100 receives`);
    };

    it('declares its contract version', () => {
      expect(transport.specificationVersion).toBe(SPECIFICATION_VERSION);
    });

    it('delivers what was published: body, attributes, a receipt, receive count 1; acknowledging deletes it', async () => {
      const attributes = { kind: 'frame', 'x-trace': 'abc-123', note: 'naïve 😀' };
      await transport.publish(jobs, [
        { id: 'with-attributes', body: '{"frame":1,"text":"héllo"}', attributes },
        { body: 'no id, no attributes' },
      ]);
      const received = await drain(jobs);
      expect(received).toHaveLength(2);
      const byBody = new Map(received.map((m) => [m.body, m]));
      expect(byBody.get('{"frame":1,"text":"héllo"}')?.attributes).toEqual(attributes);
      expect(byBody.get('no id, no attributes')?.attributes).toEqual({});
      for (const message of received) {
        expect(message.receiveCount).toBe(1);
        expect(message.id).toMatch(/\S/);
        expect(message.receipt).toMatch(/\S/);
      }
      expect(new Set(received.map((m) => m.id)).size).toBe(2);
      expect(new Set(received.map((m) => m.receipt)).size).toBe(2);
      await transport.acknowledge(jobs, received);
      await advance(LONGEST_ADVANCE_MS);
      expect(await receiveNow(jobs)).toEqual([]);
    });

    it('publishes more messages than one batch holds, each delivered once', async () => {
      const sent = messages(25, 'bulk');
      await transport.publish(jobs, sent);
      const received = await drain(jobs);
      expect(received.map((m) => m.body).sort()).toEqual(sent.map((m) => m.body).sort());
      expect(received.every((m) => m.receiveCount === 1)).toBe(true);
    });

    it('returns at most maxMessages per receive (default 10), and the rest to later receives', async () => {
      await transport.publish(jobs, messages(15, 'max'));
      const two = await receiveNow(jobs, { maxMessages: 2 });
      expect(two.length).toBeGreaterThan(0);
      expect(two.length).toBeLessThanOrEqual(2);
      const ten = await receiveNow(jobs);
      expect(ten.length).toBeGreaterThan(0);
      expect(ten.length).toBeLessThanOrEqual(10);
      const rest = await drain(jobs, 1);
      const bodies = [...two, ...ten, ...rest].map((m) => m.body);
      expect(new Set(bodies).size).toBe(15);
      expect(bodies).toHaveLength(15);
    });

    it('accepts an empty publish and an empty acknowledge, and delivers nothing for them', async () => {
      await expect(transport.publish(jobs, [])).resolves.toBeUndefined();
      await expect(transport.acknowledge(jobs, [])).resolves.toBeUndefined();
      expect(await receiveNow(jobs)).toEqual([]);
    });

    it('publishes nothing when the signal is already aborted, and rejects', async () => {
      const signal = AbortSignal.abort(new Error('the invocation is out of time'));
      const outcome = await transport.publish(jobs, messages(3, 'late'), { signal }).then(
        () => 'resolved',
        () => 'rejected',
      );
      expect(outcome).toBe('rejected');
      await advance(LONGEST_ADVANCE_MS);
      expect(await receiveNow(jobs)).toEqual([]);
    });

    it('keeps queues apart', async () => {
      const other = harness.queue('other');
      expect(other).not.toBe(jobs);
      await transport.publish(other, [{ body: 'for other' }]);
      expect(await receiveNow(jobs)).toEqual([]);
      expect((await receiveNow(other)).map((m) => m.body)).toEqual(['for other']);
    });

    it('hides a received message for the visibility timeout, then redelivers it with receiveCount + 1', async () => {
      await transport.publish(jobs, [{ id: 'again', body: 'redeliver me', attributes: { kind: 'retry' } }]);
      const [first, ...none] = await receiveNow(jobs, { visibilityTimeoutSeconds: 2 });
      expect(none).toEqual([]);
      expect(first).toMatchObject({ body: 'redeliver me', receiveCount: 1 });
      await advance(1_000);
      expect(await receiveNow(jobs, { visibilityTimeoutSeconds: 2 })).toEqual([]);
      await advance(1_500);
      const second = await receiveNow(jobs, { visibilityTimeoutSeconds: 2 });
      expect(second).toHaveLength(1);
      expect(second[0]).toMatchObject({
        id: first!.id,
        body: 'redeliver me',
        attributes: { kind: 'retry' },
        receiveCount: 2,
      });
      // A transport that says when the message was published says the same on every delivery.
      expect(second[0]!.sentAt).toBe(first!.sentAt);
      await advance(2_500);
      expect((await receiveNow(jobs))[0]?.receiveCount).toBe(3);
    });

    it('redelivers only what was not acknowledged', async () => {
      await transport.publish(jobs, messages(3, 'ack'));
      const received = await drain(jobs, 10, 1);
      expect(received).toHaveLength(3);
      const kept = received.find((m) => m.body === '{"ack":1}')!;
      await transport.acknowledge(
        jobs,
        received.filter((m) => m !== kept),
      );
      await advance(1_500);
      const again = await drain(jobs, 10, 1);
      expect(again.map((m) => [m.body, m.receiveCount])).toEqual([['{"ack":1}', 2]]);
      await transport.acknowledge(jobs, again);
      await advance(1_500);
      expect(await receiveNow(jobs)).toEqual([]);
    });

    /** Publishes `batch`, expecting bad input naming `named`, and nothing published. */
    const expectRefused = async (batch: OutboundMessage[], named: string) => {
      const error = await transport.publish(jobs, batch).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(FacerecInputError.isInstance(error), `expected a FacerecInputError, got ${String(error)}`).toBe(
        true,
      );
      expect(String((error as Error).message)).toContain(named);
      expect(await receiveNow(jobs)).toEqual([]);
    };

    it('refuses a publish with a duplicate id as bad input, publishing none of it', async () => {
      await expectRefused(
        [
          { id: 'twice', body: 'first' },
          { id: 'once', body: 'other' },
          { id: 'twice', body: 'second' },
        ],
        'twice',
      );
    });

    it.each([
      ['a body with U+FFFF', [{ id: 'bad', body: 'a\uFFFFb' }]],
      ['a body with a lone surrogate', [{ id: 'bad', body: 'a\uD800b' }]],
      ['a body with NUL', [{ id: 'bad', body: 'a\u0000b' }]],
      [
        'eleven attributes',
        [
          {
            id: 'bad',
            body: 'x',
            attributes: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`a${i}`, 'v'])),
          },
        ],
      ],
      ['an attribute named AWS.x', [{ id: 'bad', body: 'x', attributes: { 'AWS.x': 'v' } }]],
      ['an attribute name with a space', [{ id: 'bad', body: 'x', attributes: { 'a b': 'v' } }]],
      ['an empty attribute value', [{ id: 'bad', body: 'x', attributes: { kind: '' } }]],
    ])('refuses %s as bad input (SQS does), publishing none of the call', async (_, bad) => {
      await expectRefused([{ id: 'fine', body: 'ok' }, ...bad], 'bad');
    });

    it('takes what SQS takes: tabs, line breaks, emoji, U+FFFD; ten attributes', async () => {
      const body = 'tab\tnew\nline\r 😀 \uFFFD \uE000';
      const attributes = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k-${i}.v_x`, `v ${i} é`]));
      await transport.publish(jobs, [{ id: 'fine', body, attributes }]);
      const [got] = await receiveNow(jobs);
      expect(got?.body).toBe(body);
      expect(got?.attributes).toEqual(attributes);
      await transport.acknowledge(jobs, got ? [got] : []);
    });

    it('long-polls: returns as soon as a message is published, without waiting out waitTimeSeconds', async () => {
      const poll = transport.receive(jobs, { waitTimeSeconds: 20 });
      const state = observe(poll);
      await settle();
      expect(state.settled).toBe(false);
      await transport.publish(jobs, [{ body: 'arrived' }]);
      const received = await promptly(poll);
      expect(received, 'the long poll did not return when a message arrived').not.toBe(LATE);
      expect((received as ReceivedMessage[]).map((m) => m.body)).toEqual(['arrived']);
    });

    it('long-polls: ends with [] when waitTimeSeconds pass with nothing to deliver', async () => {
      const poll = transport.receive(jobs, { waitTimeSeconds: 1 });
      const state = observe(poll);
      await settle();
      expect(state.settled).toBe(false);
      await advance(1_100);
      expect(await promptly(poll), 'the long poll did not end with [] when waitTimeSeconds passed').toEqual(
        [],
      );
    });

    it('gives up a long poll when its signal aborts, rejecting with the reason', async () => {
      const controller = new AbortController();
      const reason = new Error('consumer stopping');
      const poll = transport.receive(jobs, { waitTimeSeconds: 20, signal: controller.signal });
      poll.catch(() => undefined);
      await settle();
      controller.abort(reason);
      const outcome = await promptly(
        poll.then(
          () => 'resolved',
          (e: unknown) => e,
        ),
      );
      expect(outcome, 'the long poll did not reject with the abort reason when its signal aborted').toBe(
        reason,
      );

      const already = new Error('stopped before');
      const refused = await promptly(
        transport.receive(jobs, { signal: AbortSignal.abort(already) }).then(
          () => 'resolved',
          (e: unknown) => e,
        ),
      );
      expect(refused, 'a receive with an already aborted signal did not reject with its reason').toBe(
        already,
      );
    });
  });
}
