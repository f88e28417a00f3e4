import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import {
  createDynamoDbIdempotencyStore,
  type IdempotencyStore,
  InMemoryIdempotencyStore,
} from '@facerec/lambda-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamoDb, startDynalite } from './dynalite.js';

/** A clock the test moves by hand, in milliseconds. */
function testClock(start = 1_800_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

type Harness = { store: IdempotencyStore; clock: ReturnType<typeof testClock> };

/** The three-state semantics every store must have (Powertools idempotency's, plus claim tokens). */
function describeStore(name: string, make: (ttlSeconds: number) => Promise<Harness>) {
  describe(`idempotency store: ${name}`, () => {
    let n = 0;
    const key = () => `req-${n++}:00000000-0000-4000-8000-000000000000:0`;

    it('claims a new key once; a second claim finds it in progress until its expiry', async () => {
      const { store, clock } = await make(3600);
      const k = key();
      const until = clock.now() + 30_000;
      const first = await store.claim(k, { inProgressUntil: until });
      expect(first.status).toBe('claimed');
      expect(await store.claim(k, { inProgressUntil: until + 5_000 })).toEqual({
        status: 'in-progress',
        until,
      });
      clock.advance(29_999);
      expect((await store.claim(k, { inProgressUntil: until })).status).toBe('in-progress');
    });

    it('keeps the answer of a completed key and hands it to later claims', async () => {
      const { store, clock } = await make(3600);
      const k = key();
      const claim = await store.claim(k, { inProgressUntil: clock.now() + 30_000 });
      if (claim.status !== 'claimed') throw new Error('not claimed');
      expect(await store.complete(k, claim.token, '{"result":"amy"}')).toBe(true);
      clock.advance(60_000); // past the in-progress expiry: completed stays completed
      expect(await store.claim(k, { inProgressUntil: clock.now() + 30_000 })).toEqual({
        status: 'completed',
        answer: '{"result":"amy"}',
      });
    });

    it('lets a failed key be claimed again, with a new token', async () => {
      const { store, clock } = await make(3600);
      const k = key();
      const first = await store.claim(k, { inProgressUntil: clock.now() + 30_000 });
      if (first.status !== 'claimed') throw new Error('not claimed');
      await store.fail(k, first.token);
      const second = await store.claim(k, { inProgressUntil: clock.now() + 30_000 });
      expect(second.status).toBe('claimed');
      expect(second.status === 'claimed' && second.token).not.toBe(first.token);
    });

    it('hands an expired attempt’s key to the next one; the expired attempt can no longer complete or fail it', async () => {
      const { store, clock } = await make(3600);
      const k = key();
      const dead = await store.claim(k, { inProgressUntil: clock.now() + 1_000 });
      if (dead.status !== 'claimed') throw new Error('not claimed');
      clock.advance(1_001);
      const next = await store.claim(k, { inProgressUntil: clock.now() + 1_000 });
      if (next.status !== 'claimed') throw new Error(`expected claimed, got ${next.status}`);
      expect(await store.complete(k, dead.token, 'stale')).toBe(false);
      await store.fail(k, dead.token);
      expect((await store.claim(k, { inProgressUntil: clock.now() + 1_000 })).status).toBe('in-progress');
      expect(await store.complete(k, next.token, 'fresh')).toBe(true);
      expect(await store.claim(k, { inProgressUntil: clock.now() + 1_000 })).toEqual({
        status: 'completed',
        answer: 'fresh',
      });
    });

    it('forgets a completed key after its time-to-live', async () => {
      const { store, clock } = await make(120);
      const k = key();
      const claim = await store.claim(k, { inProgressUntil: clock.now() + 1_000 });
      if (claim.status !== 'claimed') throw new Error('not claimed');
      await store.complete(k, claim.token, 'answer');
      clock.advance(119_000);
      expect((await store.claim(k, { inProgressUntil: clock.now() + 1_000 })).status).toBe('completed');
      clock.advance(2_000);
      expect((await store.claim(k, { inProgressUntil: clock.now() + 1_000 })).status).toBe('claimed');
    });
  });
}

describeStore('in memory', async (ttlSeconds) => {
  const clock = testClock();
  return { clock, store: new InMemoryIdempotencyStore({ ttlMs: ttlSeconds * 1000, now: clock.now }) };
});

describe('idempotency store in memory', () => {
  it('drops expired keys (and their answers) at the next claim, and the oldest when full', async () => {
    const clock = testClock();
    const store = new InMemoryIdempotencyStore({ ttlMs: 1_000, maxEntries: 3, now: clock.now });
    const answer = async (key: string) => {
      const claim = await store.claim(key, { inProgressUntil: clock.now() + 500 });
      if (claim.status !== 'claimed') throw new Error(`${key} not claimed`);
      await store.complete(key, claim.token, `answer of ${key}`);
    };
    await answer('a');
    await answer('b');
    clock.advance(600);
    await answer('c');
    expect(store.size).toBe(3);
    clock.advance(600); // a and b expired, c not
    await answer('d');
    expect(store.size).toBe(2);
    expect(await store.claim('c', { inProgressUntil: clock.now() + 500 })).toEqual({
      status: 'completed',
      answer: 'answer of c',
    });
    await answer('e');
    await answer('f'); // full: c, the oldest, goes
    expect(store.size).toBe(3);
    expect((await store.claim('c', { inProgressUntil: clock.now() + 500 })).status).toBe('claimed');
  });
});

describe('idempotency store on DynamoDB (dynalite)', () => {
  let db: LocalDynamoDb;
  beforeAll(async () => {
    db = await startDynalite();
  });
  afterAll(() => db?.close());

  describeStore('DynamoDB', async (ttlSeconds) => {
    const clock = testClock();
    const store = await createDynamoDbIdempotencyStore({
      table: db.table,
      client: db.client(),
      ttlSeconds,
      now: clock.now,
    });
    return { clock, store };
  });

  it('writes the Powertools layout: id, status, expiration (TTL, epoch seconds), data', async () => {
    const clock = testClock();
    const client = db.client();
    const store = await createDynamoDbIdempotencyStore({
      table: db.table,
      client,
      ttlSeconds: 600,
      now: clock.now,
    });
    const claim = await store.claim('layout', { inProgressUntil: clock.now() + 30_000 });
    if (claim.status !== 'claimed') throw new Error('not claimed');
    const read = async () =>
      (
        await client.send(
          new GetItemCommand({ TableName: db.table, Key: { id: { S: 'layout' } }, ConsistentRead: true }),
        )
      ).Item!;
    expect(await read()).toMatchObject({
      status: { S: 'INPROGRESS' },
      in_progress_expiration: { N: String(clock.now() + 30_000) },
      expiration: { N: String(clock.now() / 1000 + 600) },
    });
    clock.advance(5_000);
    await store.complete('layout', claim.token, '{"result":"penny"}');
    const done = await read();
    expect(done).toMatchObject({
      status: { S: 'COMPLETED' },
      data: { S: '{"result":"penny"}' },
      expiration: { N: String(clock.now() / 1000 + 600) },
    });
    expect(done.in_progress_expiration).toBeUndefined();
  });

  it('refuses a table name DynamoDB would refuse, naming the store', async () => {
    await expect(createDynamoDbIdempotencyStore({ table: 'no spaces allowed' })).rejects.toThrow(
      /DynamoDbIdempotencyStore: table/,
    );
  });
});
