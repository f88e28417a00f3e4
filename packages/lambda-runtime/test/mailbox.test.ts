import { describe, expect, it } from 'vitest';
import { ResponseMailbox } from '../src/local/mailbox.js';

const never = new AbortController().signal;

describe('ResponseMailbox', () => {
  it('hands each client only the answers of its own request ids, once', async () => {
    const box = new ResponseMailbox();
    box.add('a-1', { n: 1 });
    box.add('b-1', { n: 2 });
    box.add('a-2', { n: 3 });
    const mine = await box.take({ prefix: 'a-' }, 10, 0, never);
    expect(mine.map((e) => e.body)).toEqual([{ n: 1 }, { n: 3 }]);
    // Reserved: a second poll with the same prefix does not get them again.
    expect(await box.take({ prefix: 'a-' }, 10, 0, never)).toEqual([]);
    box.commit(mine);
    expect(box.size).toBe(1);
    expect((await box.take({ prefix: 'b-' }, 10, 0, never)).map((e) => e.requestId)).toEqual(['b-1']);
  });

  it('hands one request id exactly, where its prefix would also take the ids it begins', async () => {
    const box = new ResponseMailbox();
    for (const id of ['job-1', 'job-10', 'job-11', 'job-1']) box.add(id, id);
    // job-1 is a prefix of job-10 and job-11: a client polling prefix=job-1 took them all.
    expect((await box.take({ requestId: 'job-1' }, 10, 0, never)).map((e) => e.body)).toEqual([
      'job-1',
      'job-1',
    ]);
    // A waiting client is woken by its id only.
    const waiting = box.take({ requestId: 'job-2' }, 10, 5000, never);
    setTimeout(() => box.add('job-20', 'other'), 20);
    setTimeout(() => box.add('job-2', 'mine'), 60);
    expect((await waiting).map((e) => e.body)).toEqual(['mine']);
    expect((await box.take({ prefix: 'job-1' }, 10, 0, never)).map((e) => e.body)).toEqual([
      'job-10',
      'job-11',
    ]);
  });

  it('does not wait on a signal aborted before the poll (a long poll that came in while the server stopped)', async () => {
    const box = new ResponseMailbox();
    const stopped = new AbortController();
    stopped.abort();
    const started = performance.now();
    expect(await box.take({ prefix: 'a-' }, 10, 20_000, stopped.signal)).toEqual([]);
    // It waited the poll's 20 s, and its timer held the stopped server's process that long.
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('gives an answer back when it could not be delivered', async () => {
    const box = new ResponseMailbox();
    box.add('a-1', 1);
    const first = await box.take({ prefix: 'a-' }, 10, 0, never);
    box.release(first);
    expect((await box.take({ prefix: 'a-' }, 10, 0, never)).map((e) => e.body)).toEqual([1]);
  });

  it('wakes a waiting client when one of its answers arrives, not for another client', async () => {
    const box = new ResponseMailbox();
    const started = performance.now();
    const waiting = box.take({ prefix: 'a-' }, 10, 5000, never);
    setTimeout(() => box.add('b-1', 'other'), 20);
    setTimeout(() => box.add('a-7', 'mine'), 60);
    expect((await waiting).map((e) => e.body)).toEqual(['mine']);
    expect(performance.now() - started).toBeLessThan(1000);
    const aborted = new AbortController();
    const gone = box.take({ prefix: 'c-' }, 10, 5000, aborted.signal);
    aborted.abort();
    expect(await gone).toEqual([]);
  });

  it('drops answers nobody collects after the TTL, and the oldest beyond its size', async () => {
    let now = 0;
    const dropped: unknown[] = [];
    const onDropped = (d: unknown) => dropped.push(d);
    const box = new ResponseMailbox({ ttlMs: 1000, maxEntries: 3, now: () => now, onDropped });
    box.add('a-1', 1);
    now = 2000;
    box.add('a-2', 2);
    expect((await box.take({ prefix: 'a-' }, 10, 0, never)).map((e) => e.body)).toEqual([2]);
    const capped = new ResponseMailbox({ maxEntries: 2, onDropped });
    for (const n of [1, 2, 3, 4]) capped.add(`x-${n}`, n);
    expect(capped.size).toBe(2);
    expect((await capped.take({ prefix: 'x-' }, 10, 0, never)).map((e) => e.body)).toEqual([3, 4]);
    // Each clean-up that dropped something says how many, and why (the runtime logs it).
    expect(dropped).toEqual([
      { expired: 1, full: 0 },
      { expired: 0, full: 1 },
      { expired: 0, full: 1 },
    ]);
  });

  it('counts answers past their time as dropped when asked its size, with no new answer arriving', () => {
    let now = 0;
    const dropped: unknown[] = [];
    const box = new ResponseMailbox({
      ttlMs: 1000,
      maxEntries: 2,
      now: () => now,
      onDropped: (d) => dropped.push(d),
    });
    box.add('a-1', 1);
    box.add('a-2', 2);
    // Full, but nothing past its time: asking the size drops nothing (room is made only for a new answer).
    expect(box.size).toBe(2);
    expect(dropped).toEqual([]);
    now = 2000;
    expect(box.size).toBe(0);
    expect(dropped).toEqual([{ expired: 2, full: 0 }]);
  });

  it('drops an answer past its time when a client asks for it, instead of delivering it', async () => {
    let now = 0;
    const dropped: unknown[] = [];
    const box = new ResponseMailbox({ ttlMs: 1000, now: () => now, onDropped: (d) => dropped.push(d) });
    box.add('a-1', 1);
    now = 1500;
    box.add('a-2', 2);
    expect(dropped).toEqual([{ expired: 1, full: 0 }]);
    now = 2600;
    // a-2 is past its time too, with nothing added since.
    expect(await box.take({ prefix: 'a-' }, 10, 0, new AbortController().signal)).toEqual([]);
    expect(dropped).toEqual([
      { expired: 1, full: 0 },
      { expired: 1, full: 0 },
    ]);
  });
});
