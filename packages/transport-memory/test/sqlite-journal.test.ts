import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeTransportConformance } from '@facerec/framework/testing';
import { describe, expect, it } from 'vitest';
import {
  InMemoryQueueTransport,
  type InMemoryQueueTransportOptions,
  ManualClock,
  openSqliteQueueJournal,
  QueueFileError,
  type QueueJournal,
} from '../src/index.js';

const scratch = () => path.join(mkdtempSync(path.join(tmpdir(), 'facerec-queue-')), 'queue.sqlite');

describeTransportConformance('InMemoryQueueTransport with a SQLite journal (manual clock)', async () => {
  const clock = new ManualClock(1_000_000);
  const transport = new InMemoryQueueTransport({ clock, journal: await openSqliteQueueJournal(scratch()) });
  return {
    transport,
    queue: (name) => name,
    advance: async (ms) => clock.advance(ms),
    dispose: () => transport.close(),
  };
});

describe('InMemoryQueueTransport: durable with a SQLite journal', () => {
  const queues: InMemoryQueueTransportOptions['queues'] = {
    jobs: { visibilityTimeoutSeconds: 30, maxReceiveCount: 2, deadLetterQueue: 'jobs-dlq' },
    answers: { deduplicationWindowSeconds: 60 },
  };
  const open = async (file: string, clock: ManualClock) =>
    new InMemoryQueueTransport({ clock, queues, journal: await openSqliteQueueJournal(file) });

  it('restores every unacknowledged message on reopening, in flight ones visible at once, counts kept', async () => {
    const file = scratch();
    const clock = new ManualClock(1_000_000);
    const first = await open(file, clock);
    await first.publish('jobs', [
      { id: 'acked', body: 'a' },
      { id: 'in-flight', body: 'b', attributes: { kind: 'frame' } },
      { id: 'waiting', body: 'c' },
    ]);
    const received = await first.receive('jobs', { maxMessages: 2, waitTimeSeconds: 0 });
    expect(received.map((m) => m.id)).toEqual(['acked', 'in-flight']);
    // When each was published, by the transport's clock.
    expect(received.map((m) => m.sentAt)).toEqual([1_000_000, 1_000_000]);
    await first.acknowledge('jobs', [received[0]!]);
    await first.close(); // as a killed process would leave it: the receipt of 'in-flight' is never used

    const second = await open(file, clock);
    expect([second.depth('jobs'), second.inFlight('jobs')]).toEqual([2, 0]);
    // What it holds can be read without receiving it (nor counting a delivery).
    expect(second.bodies('jobs')).toEqual(['b', 'c']);
    expect(second.bodies('no-such-queue')).toEqual([]);
    const again = await second.receive('jobs', { waitTimeSeconds: 0 });
    expect(again.map((m) => [m.id, m.body, m.receiveCount, m.attributes])).toEqual([
      ['in-flight', 'b', 2, { kind: 'frame' }],
      ['waiting', 'c', 1, {}],
    ]);
    // The publish time is not kept in the file: a restored message does not say it.
    expect(again.map((m) => m.sentAt)).toEqual([undefined, undefined]);
    // A receipt of the process that is gone is refused: its deliveries ended with it.
    await expect(second.acknowledge('jobs', [received[1]!])).rejects.toThrow(/not a receipt issued/);
    await second.close();

    // Past maxReceiveCount the next receive moves 'in-flight' to the dead-letter queue, durably too (where
    // receiving counts on, as in SQS).
    const third = await open(file, clock);
    const last = await third.receive('jobs', { waitTimeSeconds: 0 });
    expect(last.map((m) => [m.id, m.receiveCount])).toEqual([['waiting', 2]]);
    expect(third.depth('jobs-dlq')).toBe(1);
    await third.close();
    const fourth = await open(file, clock);
    expect(
      (await fourth.receive('jobs-dlq', { waitTimeSeconds: 0 })).map((m) => [m.id, m.receiveCount]),
    ).toEqual([['in-flight', 3]]);
    await fourth.close();
  });

  it('drops a repeated id within the deduplication window, across reopening too', async () => {
    const file = scratch();
    const clock = new ManualClock(1_000_000);
    const first = await open(file, clock);
    await first.publish('answers', [{ id: 'face-1', body: 'first' }]);
    await first.publish('answers', [
      { id: 'face-1', body: 'again' },
      { id: 'face-2', body: 'other' },
    ]);
    expect(first.depth('answers')).toBe(2);
    await first.close();
    const second = await open(file, clock);
    await second.publish('answers', [{ id: 'face-1', body: 'after a restart' }]);
    const kept = await second.receive('answers', { waitTimeSeconds: 0 });
    expect(kept.map((m) => m.body)).toEqual(['first', 'other']);
    await second.acknowledge('answers', kept);
    clock.advance(60_000);
    await second.publish('answers', [{ id: 'face-1', body: 'window over' }]);
    expect((await second.receive('answers', { waitTimeSeconds: 0 })).map((m) => m.body)).toEqual([
      'window over',
    ]);
    await second.close();
  });

  it('creates a new queue file private (it holds face crops), its write-ahead log too', async () => {
    const file = scratch();
    const transport = new InMemoryQueueTransport({ journal: await openSqliteQueueJournal(file) });
    try {
      await transport.publish('q', [{ body: 'a face' }]);
      for (const f of [file, `${file}-wal`]) expect(statSync(f).mode & 0o777).toBe(0o600);
    } finally {
      await transport.close();
    }
  });

  it('refuses a queue file in a folder that does not exist, creating none', async () => {
    const file = path.join(path.dirname(scratch()), 'typo', 'queue.sqlite');
    const error = await openSqliteQueueJournal(file).catch((e: unknown) => e);
    expect(QueueFileError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain(
      `its folder ${path.dirname(file)} does not exist; create it first`,
    );
    expect(existsSync(path.dirname(file))).toBe(false);
    // A folder that is a file, and a queue path that is a folder.
    const dir = path.dirname(scratch());
    writeFileSync(path.join(dir, 'plain'), '');
    const throughFile = await openSqliteQueueJournal(path.join(dir, 'plain', 'q.sqlite')).catch(
      (e: unknown) => e,
    );
    expect((throughFile as Error).message).toContain(`${path.join(dir, 'plain')} is a file, not a folder`);
    const folder = await openSqliteQueueJournal(dir).catch((e: unknown) => e);
    expect((folder as Error).message).toContain('is a folder; give the path of a file in it');
  });

  it('refuses a queue file another transport holds', async () => {
    const file = scratch();
    const clock = new ManualClock();
    const holder = await open(file, clock);
    const error = await openSqliteQueueJournal(file).catch((e: unknown) => e);
    expect(QueueFileError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(/in use by another journal, in another process or this one/);
    await holder.close();
    await (await open(file, clock)).close();
  });

  it('applies nothing when the journal refuses a change: publish and receive fail, the queue is as before', async () => {
    const journal = await openSqliteQueueJournal(scratch());
    let refuse = false;
    const failing: QueueJournal = {
      load: (now) => journal.load(now),
      commit: (changes, now) => {
        if (refuse) throw new Error('disk full');
        journal.commit(changes, now);
      },
      close: () => journal.close(),
    };
    const transport = new InMemoryQueueTransport({ clock: new ManualClock(), journal: failing });
    await transport.publish('jobs', [{ id: 'kept', body: 'k' }]);
    refuse = true;
    await expect(transport.publish('jobs', [{ id: 'lost', body: 'l' }])).rejects.toThrow('disk full');
    await expect(transport.receive('jobs', { waitTimeSeconds: 0 })).rejects.toThrow('disk full');
    expect([transport.depth('jobs'), transport.inFlight('jobs')]).toEqual([1, 0]);
    refuse = false;
    expect(
      (await transport.receive('jobs', { waitTimeSeconds: 0 })).map((m) => [m.id, m.receiveCount]),
    ).toEqual([['kept', 1]]);
    await transport.close();
  });
});
