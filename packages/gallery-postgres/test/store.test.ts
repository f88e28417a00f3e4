import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { FacerecError, FileGallery, GalleryFormatError, InvalidOptionsError } from '@facerec/framework';
import {
  CONFORMANCE_EMBEDDER,
  describeGalleryStoreConformance,
  modelAndLegacyEmbedding,
  seededRandom,
} from '@facerec/framework/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  hnswIndexName,
  migrate,
  openGalleryStoreFromUrl,
  PostgresGalleryStore,
  readMigrations,
  redactConnectionString,
} from '../src/index.js';
import { PGLITE_MAX_CONNECTIONS, type PgliteServer, startPgliteServer } from './pglite-server.js';

let server: PgliteServer;
beforeAll(async () => {
  server = await startPgliteServer();
});
afterAll(async () => {
  await server?.stop();
});

for (const search of ['exact', 'hnsw'] as const) {
  describeGalleryStoreConformance(`postgres + pgvector (${search})`, () => {
    // One server for the file; a fresh prefix gives each test its own, empty, collections.
    const prefix = randomBytes(4).toString('hex');
    return {
      open: (name, embedder) =>
        PostgresGalleryStore.open({
          connectionString: server.connectionString,
          collection: `${prefix}-${name}`,
          embedder,
          search,
          maxConnections: PGLITE_MAX_CONNECTIONS,
        }),
    };
  });
}

/** A calibration record as `gallery calibrate` writes one. */
const CALIBRATION = {
  method: 'probes' as const,
  targetFar: 0.01,
  achievedFar: 0.008,
  achievedFrr: 0.05,
  genuinePairs: 40,
  impostorPairs: 600,
  calibratedAt: '2026-12-03T00:00:00.000Z',
  equalErrorRate: { threshold: 0.5, rate: 0.02 },
  keyPoints: [],
};

describe('PostgresGalleryStore', () => {
  const open = (collection: string, options: Partial<Parameters<typeof PostgresGalleryStore.open>[0]> = {}) =>
    PostgresGalleryStore.open({
      connectionString: server.connectionString,
      collection,
      embedder: CONFORMANCE_EMBEDDER,
      maxConnections: PGLITE_MAX_CONNECTIONS,
      ...options,
    });

  /** A pool whose connections act as `role` (PGlite: the whole session does, until `RESET ROLE`). */
  const poolAs = (role: string) => {
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    pool.on('connect', (client) => void client.query(`SET ROLE ${role}`));
    return pool;
  };
  /** Makes `role` (once) with `grants` alone: no CREATE on the schema, not the tables' owner. */
  const grantOnly = (admin: pg.Pool, role: string, grants: string) =>
    admin.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role}; END IF;
      END $$;
      REVOKE CREATE ON SCHEMA public FROM PUBLIC;
      ${grants}`);

  it('migrates once: the schema version is recorded and a second run applies nothing', async () => {
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    try {
      expect((await readMigrations()).map((m) => m.name)).toEqual(['001_collections', '002_example_checks']);
      await migrate(pool);
      expect(await migrate(pool)).toEqual([]);
      const { rows } = await pool.query(
        'SELECT version, name FROM facerec_schema_migrations ORDER BY version',
      );
      expect(rows).toEqual([
        { version: 1, name: '001_collections' },
        { version: 2, name: '002_example_checks' },
      ]);
      // A migration applied by an open (an upgrade) is told, for the operator's log.
      await pool.query(`ALTER TABLE facerec_examples DROP CONSTRAINT facerec_examples_unit_embedding;
        ALTER TABLE facerec_examples DROP CONSTRAINT facerec_examples_no_face_reserved;
        DELETE FROM facerec_schema_migrations WHERE version = 2`);
      const onMigrated = vi.fn();
      await (await open('migrated', { onMigrated })).close();
      expect(onMigrated.mock.calls).toEqual([[['002_example_checks']]]);
      // Validated where every stored row passes (so an open has no rows to measure).
      const checks = await pool.query(
        "SELECT conname, convalidated FROM pg_constraint WHERE conname IN ('facerec_examples_no_face_reserved', 'facerec_examples_unit_embedding') ORDER BY conname",
      );
      expect(checks.rows).toEqual([
        { conname: 'facerec_examples_no_face_reserved', convalidated: true },
        { conname: 'facerec_examples_unit_embedding', convalidated: true },
      ]);
      await (await open('migrated', { onMigrated })).close();
      expect(onMigrated).toHaveBeenCalledTimes(1);
      // A database a newer version migrated further: refused, not used as if this code knew its tables.
      await pool.query("INSERT INTO facerec_schema_migrations (version, name) VALUES (3, '003_future')");
      try {
        const error = await open('future').catch((e: unknown) => e);
        expect(GalleryFormatError.isInstance(error)).toBe(true);
        expect((error as Error).message).toBe(
          "the database's facerec schema has migration 3, which this @facerec/gallery-postgres (migrations up to 2) does not know: a newer version wrote it; upgrade @facerec/gallery-postgres",
        );
      } finally {
        await pool.query('DELETE FROM facerec_schema_migrations WHERE version = 3');
      }
    } finally {
      await pool.end();
    }
  });

  it('opens for a role that may only read once the schema is current, and refuses its writes', async () => {
    const admin = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    const reader = poolAs('facerec_reader');
    const writer = await open('read-only');
    try {
      await writer.add('amy', [{ embedding: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]) }]);
      await grantOnly(
        admin,
        'facerec_reader',
        'GRANT SELECT ON facerec_collections, facerec_examples, facerec_schema_migrations TO facerec_reader',
      );
      // It used to run the migration's CREATE TABLE IF NOT EXISTS under a lock at every open: permission denied.
      const store = await PostgresGalleryStore.open({ pool: reader, collection: 'read-only' });
      const [match] = await store.match([Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0])], { threshold: 0.5 });
      expect(match!.identity).toBe('amy');
      await expect(
        store.add('bob', [{ embedding: Float32Array.from([0, 1, 0, 0, 0, 0, 0, 0]) }]),
      ).rejects.toMatchObject({
        code: 'GALLERY_STORE_REFUSED',
        message: expect.stringMatching(
          /^postgres \(pool\), collection read-only: permission denied for table facerec_examples$/,
        ),
      });
      await store.close();
      // After an upgrade that ships a migration, the reader may not apply it: told so, with what to do (it was
      // Postgres's "must be owner of table facerec_examples" alone). PGlite serves every connection from one
      // session: the role set is everyone's until reset.
      await reader.query('RESET ROLE');
      await admin.query(`ALTER TABLE facerec_examples DROP CONSTRAINT facerec_examples_unit_embedding;
        ALTER TABLE facerec_examples DROP CONSTRAINT facerec_examples_no_face_reserved;
        DELETE FROM facerec_schema_migrations WHERE version = 2`);
      await reader.query('SET ROLE facerec_reader');
      await expect(
        PostgresGalleryStore.open({ pool: reader, collection: 'read-only' }),
      ).rejects.toMatchObject({
        code: 'GALLERY_STORE_REFUSED',
        message: expect.stringMatching(
          /^postgres \(pool\), collection read-only: the database's facerec schema needs migration 002_example_checks, which this role may not apply \(.+\): open the store once as the facerec tables' owner/,
        ),
      });
      // A newer version's schema is refused as such for a reader too (it met "permission denied" first).
      await reader.query('RESET ROLE');
      await admin.query("INSERT INTO facerec_schema_migrations (version, name) VALUES (3, '003_future')");
      await reader.query('SET ROLE facerec_reader');
      await expect(PostgresGalleryStore.open({ pool: reader, collection: 'read-only' })).rejects.toThrow(
        /has migration 3, which this @facerec\/gallery-postgres \(migrations up to 2\) does not know/,
      );
    } finally {
      await reader.query('RESET ROLE');
      await admin.query('DELETE FROM facerec_schema_migrations WHERE version = 3');
      await migrate(admin);
      await writer.close();
      await reader.end();
      await admin.query('GRANT CREATE ON SCHEMA public TO PUBLIC');
      await admin.end();
    }
  });

  it("works for a writer with the README's rights (no CREATE, not the owner), which cannot make a collection", async () => {
    const admin = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    const writer = poolAs('facerec_writer');
    const owner = await open('writable');
    try {
      await owner.add('amy', [{ embedding: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]) }]);
      await grantOnly(
        admin,
        'facerec_writer',
        `GRANT SELECT, INSERT, UPDATE, DELETE ON facerec_collections, facerec_examples TO facerec_writer;
         GRANT SELECT ON facerec_schema_migrations TO facerec_writer;
         GRANT USAGE ON SEQUENCE facerec_examples_seq_seq TO facerec_writer`,
      );
      const store = await PostgresGalleryStore.open({ pool: writer, collection: 'writable' });
      const [bob] = await store.add('bob', [{ embedding: Float32Array.from([0, 1, 0, 0, 0, 0, 0, 0]) }]);
      expect(bob!.added).toBe(true);
      await store.setThreshold(0.5);
      expect(store.threshold).toBe(0.5);
      await store.removeExamples([bob!.id]);
      expect(await store.removeIdentity('amy')).toBe(1);
      await store.close();
      // A new collection builds its HNSW index, which takes the tables' owner.
      await expect(
        PostgresGalleryStore.open({ pool: writer, collection: 'writable-2', embedder: CONFORMANCE_EMBEDDER }),
      ).rejects.toMatchObject({
        code: 'GALLERY_STORE_REFUSED',
        message: expect.stringMatching(/must be owner of table facerec_examples$/),
      });
    } finally {
      // PGlite serves every connection from one session: the role set is everyone's until reset.
      await writer.query('RESET ROLE');
      await owner.close();
      await writer.end();
      await admin.query('GRANT CREATE ON SCHEMA public TO PUBLIC');
      await admin.end();
    }
  });

  it('refuses rows no facerec write makes: a longer-than-unit embedding, an answer as a name (schema version 2)', async () => {
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    const store = await open('tampered', { search: 'exact' });
    const unit = (i: number) => Float32Array.from({ length: 8 }, (_, k) => (k === i ? 1 : 0));
    try {
      await store.add('amy', [{ embedding: unit(0) }]);
      await store.add('howard', [{ embedding: unit(1) }]);
      const scale = `UPDATE facerec_examples SET embedding = (SELECT ('[' || array_to_string(array_agg(x * 1.3), ',') || ']')::vector
                     FROM unnest(embedding::real[]) x) WHERE collection = 'tampered' AND identity = 'howard'`;
      // Every write is checked by the server now.
      await expect(pool.query(scale)).rejects.toThrow(/facerec_examples_unit_embedding/);
      await expect(
        pool.query(
          "UPDATE facerec_examples SET identity = 'no face' WHERE collection = 'tampered' AND identity = 'amy'",
        ),
      ).rejects.toThrow(/facerec_examples_no_face_reserved/);
      // A row stored before the checks (or with them dropped): howard's longer vector was distance 0 from any face.
      await pool.query('ALTER TABLE facerec_examples DROP CONSTRAINT facerec_examples_unit_embedding');
      try {
        await pool.query(scale);
        // A store opening the collection looks for such rows while the check is not validated (rows stored before
        // it, or the check dropped): refused, naming the identity and what to do. (Such a row was answered as
        // nearer every face than it is: at distance 0 once its inner product with a unit query passed 1.)
        await expect(open('tampered')).rejects.toThrow(
          /: an example of identity "howard" is not a unit vector \(length 1\.3000\): a row written outside facerec; remove such rows, e\.g\. DELETE FROM facerec_examples WHERE collection = 'tampered' AND NOT abs\(vector_norm\(embedding\) - 1\) < 0\.001/,
        );
        // A snapshot (a copy, a calibration) of a store opened before refuses it too, rather than normalising it.
        await expect(store.snapshot()).rejects.toThrow(
          /an example of identity "howard" is not a unit vector \(length 1\.3000\)/,
        );
        await pool.query(
          "UPDATE facerec_examples SET embedding = '[0,1,0,0,0,0,0,0]' WHERE collection = 'tampered' AND identity = 'howard'",
        );
      } finally {
        await pool.query(`ALTER TABLE facerec_examples ADD CONSTRAINT facerec_examples_unit_embedding
                          CHECK (abs(vector_norm(embedding) - 1) < 0.001) NOT VALID`);
      }
      await pool.query('ALTER TABLE facerec_examples DROP CONSTRAINT facerec_examples_no_face_reserved');
      try {
        await pool.query(
          "UPDATE facerec_examples SET identity = 'no face' WHERE collection = 'tampered' AND identity = 'howard'",
        );
        // As an older facerec could store it: refused when the store opens, with what to do, and by a search
        // of a store opened before (which answered it as "no face").
        const rename =
          /the identity "no face" is named as an answer of the pipeline \(stored by an older facerec\), so a face recognised as it could not be told from that answer: rename it, e\.g\. UPDATE facerec_examples SET identity = 'new name' WHERE collection = 'tampered' AND identity = 'no face'/;
        await expect(store.match([unit(1)], { threshold: 0.5 })).rejects.toThrow(rename);
        await expect(open('tampered')).rejects.toThrow(rename);
      } finally {
        await pool.query("DELETE FROM facerec_examples WHERE collection = 'tampered'");
        await pool.query(`ALTER TABLE facerec_examples ADD CONSTRAINT facerec_examples_no_face_reserved
                          CHECK (identity <> 'no face') NOT VALID`);
      }
    } finally {
      await store.close();
      await pool.end();
    }
  });

  it('finds a photo an earlier version stored (normalised once more: other bytes, another id) instead of storing it twice', async () => {
    const store = await open('legacy-ids');
    const random = seededRandom(11);
    let differing = 0;
    try {
      for (let k = 0; k < 60 && differing < 5; k++) {
        // A model's output, normalised in float32; an earlier version stored it divided by its norm once more.
        const { model, legacy } = modelAndLegacyEmbedding(Array.from({ length: 8 }, () => random() - 0.5));
        if (legacy.every((v, i) => v === model[i])) continue;
        differing++;
        const [before] = await store.add(`p${k}`, [{ embedding: legacy, source: 'then.jpg' }]);
        const [again] = await store.add(`p${k}`, [{ embedding: model, source: 'now.jpg' }]);
        expect(again).toEqual({ ...before, added: false });
        expect(await store.list({ identity: `p${k}` })).toHaveLength(1);
      }
      expect(differing).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it('reads a source written outside facerec at most 1,024 characters long, keeping its end', async () => {
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    const store = await open('long-source');
    try {
      await store.add('amy', [{ embedding: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]), source: 'amy.jpg' }]);
      await pool.query(
        "UPDATE facerec_examples SET source = repeat('x', 1000000) || 'end.jpg' WHERE collection = 'long-source'",
      );
      const [listed] = await store.list();
      expect(listed!.source).toHaveLength(1024);
      expect(listed!.source).toMatch(/^…x+end\.jpg$/);
      const [example] = (await store.snapshot()).examples('amy');
      expect(example!.source).toBe(listed!.source);
    } finally {
      await store.close();
      await pool.end();
    }
  });

  it('searches through the HNSW index with hnsw, and scans the collection with exact', async () => {
    const random = seededRandom(7);
    const vector = () => Float32Array.from({ length: 8 }, () => random() - 0.5);
    const hnsw = await open('plans', { search: 'hnsw' });
    const exact = await open('plans', { search: 'exact' });
    try {
      await hnsw.addMany(
        Array.from({ length: 300 }, (_, i) => ({ identity: `p${i}`, examples: [{ embedding: vector() }] })),
      );
      const index = hnswIndexName('plans');
      expect(await hnsw.explainMatch(vector(), 3)).toContain(`Index Scan using ${index}`);
      expect(await exact.explainMatch(vector(), 3)).not.toContain(index);
    } finally {
      await hnsw.close();
      await exact.close();
    }
  });

  it('HNSW agrees with exact search on 2,000 random identities (recall@1 at ef_search 100)', async () => {
    const random = seededRandom(2024);
    const vector = () => Float32Array.from({ length: 8 }, () => random() * 2 - 1);
    const exact = await open('recall', { search: 'exact' });
    const hnsw = await open('recall', { search: 'hnsw', efSearch: 100 });
    try {
      const people = Array.from({ length: 2000 }, (_, i) => ({ name: `id${i}`, embedding: vector() }));
      await exact.addMany(people.map((p) => ({ identity: p.name, examples: [{ embedding: p.embedding }] })));
      const queries = Array.from({ length: 100 }, vector);
      const a = await exact.match(queries);
      const b = await hnsw.match(queries);
      const agree = a.filter((m, i) => m.candidates[0]!.identity === b[i]!.candidates[0]!.identity).length;
      expect(agree / queries.length).toBeGreaterThanOrEqual(0.99);
    } finally {
      await Promise.all([exact.close(), hnsw.close()]);
    }
  });

  it('gives hnsw the topK identities asked for above efSearch, and scans above 1,000 as exact does', async () => {
    const random = seededRandom(99);
    const vector = () => Float32Array.from({ length: 8 }, () => random() * 2 - 1);
    const exact = await open('wide', { search: 'exact' });
    const hnsw = await open('wide', { search: 'hnsw', efSearch: 10 });
    try {
      await exact.addMany(
        Array.from({ length: 1100 }, (_, i) => ({ identity: `id${i}`, examples: [{ embedding: vector() }] })),
      );
      const query = vector();
      // HNSW returns at most ef_search rows: walked at ef_search 10, top 50 gave 10 identities.
      const [fifty] = await hnsw.match([query], { topK: 50 });
      expect(fifty!.candidates).toHaveLength(50);
      const [exactFifty] = await exact.match([query], { topK: 50 });
      const overlap = fifty!.candidates.filter((c) =>
        exactFifty!.candidates.some((e) => e.identity === c.identity),
      ).length;
      expect(overlap).toBeGreaterThanOrEqual(49);
      // Above pgvector's largest ef_search: a scan, every identity, in exact's order.
      const [all] = await hnsw.match([query], { topK: 1050 });
      const [exactAll] = await exact.match([query], { topK: 1050 });
      expect(all!.candidates).toHaveLength(1050);
      expect(all!.candidates.map((c) => c.identity)).toEqual(exactAll!.candidates.map((c) => c.identity));
      expect(await hnsw.explainMatch(query, 1050)).not.toContain(hnswIndexName('wide'));
      expect(await hnsw.explainMatch(query, 50)).toContain(`Index Scan using ${hnswIndexName('wide')}`);
    } finally {
      await Promise.all([exact.close(), hnsw.close()]);
    }
  });

  it('keeps its settings: threshold, calibration flag, and refuses centroid aggregation', async () => {
    const store = await open('settings', { threshold: 0.8 });
    expect(store.threshold).toBe(0.8);
    expect(store.isCalibrated).toBe(false);
    await store.setThreshold(0.6);
    await store.close();
    const again = await open('settings');
    expect(again.threshold).toBe(0.6);
    await again.close();
    await expect(
      PostgresGalleryStore.open({
        connectionString: server.connectionString,
        collection: 'nope',
        maxConnections: 1,
      }),
    ).rejects.toThrow(/no gallery at .*\?collection=nope: no such collection; give the embedder/);
    // A name padded with spaces is not made (as identity names are not).
    await expect(open(' padded ')).rejects.toThrow(
      /@facerec\/gallery-postgres: the collection name " padded " has spaces at the start or end/,
    );
  });

  it('createFrom copies a gallery whole in one transaction: stopped or failed part-way, it leaves no collection', async () => {
    const random = seededRandom(5);
    const gallery = FileGallery.create({
      embedder: CONFORMANCE_EMBEDDER,
      metric: 'cosine',
      threshold: 0.45,
      calibration: CALIBRATION,
      identities: Array.from({ length: 2600 }, (_, i) => ({
        name: `p${i}`,
        examples: [1, 2].map((k) => ({
          source: `p${i}-${k}.png`,
          embedding: Float32Array.from({ length: 8 }, () => random() - 0.5),
        })),
      })),
    });
    const base = { connectionString: server.connectionString, maxConnections: PGLITE_MAX_CONNECTIONS };
    // Stopped after its first rows, and failed after them (the process killed, say): nothing is left.
    const stop = new AbortController();
    const seen: number[] = [];
    await expect(
      PostgresGalleryStore.createFrom({ ...base, collection: 'from-stopped' }, gallery, {
        signal: stop.signal,
        onProgress: (done) => {
          seen.push(done);
          stop.abort(new Error('stopped'));
        },
      }),
    ).rejects.toThrow('stopped');
    expect(seen[0]).toBe(500);
    await expect(
      PostgresGalleryStore.createFrom({ ...base, collection: 'from-failed' }, gallery, {
        onProgress: (done) => {
          if (done > 1000) throw new Error('lost');
        },
      }),
    ).rejects.toThrow('lost');
    // Stopped while its index is built (Ctrl-C once `gallery copy` says so): nothing is left either.
    const late = new AbortController();
    await expect(
      PostgresGalleryStore.createFrom({ ...base, collection: 'from-indexing' }, gallery, {
        signal: late.signal,
        onIndexing: () => late.abort(new Error('stopped while indexing')),
      }),
    ).rejects.toThrow('stopped while indexing');
    for (const name of ['from-stopped', 'from-failed', 'from-indexing']) {
      await expect(PostgresGalleryStore.open({ ...base, collection: name })).rejects.toThrow(
        /no such collection/,
      );
    }
    const progress: number[] = [];
    const store = await PostgresGalleryStore.createFrom({ ...base, collection: 'from-whole' }, gallery, {
      onProgress: (done, total) => progress.push(done / total),
    });
    try {
      expect(progress.at(-1)).toBe(1);
      expect([store.metric, store.threshold, store.calibration]).toEqual(['cosine', 0.45, CALIBRATION]);
      const held = await store.snapshot();
      expect(held.names).toEqual([...gallery.names].sort());
      for (const name of ['p0', 'p1234', 'p2599']) {
        expect(held.examples(name).map((e) => [e.source, [...e.embedding]])).toEqual(
          gallery.examples(name).map((e) => [e.source, [...e.embedding]]),
        );
      }
      // Searched through its index, built after the rows.
      expect(await store.explainMatch(gallery.examples('p7')[0]!.embedding)).toContain(
        `Index Scan using ${hnswIndexName('from-whole')}`,
      );
      const [match] = await store.match([gallery.examples('p7')[0]!.embedding]);
      expect(match!.identity).toBe('p7');
    } finally {
      await store.close();
    }
    // Nothing is merged into a collection that exists.
    await expect(
      PostgresGalleryStore.createFrom({ ...base, collection: 'from-whole' }, gallery),
    ).rejects.toThrow(/\?collection=from-whole exists: create a new collection \(nothing is merged\)/);
  });

  it('keeps a calibration record, refuses an invalid one, and refuses a settings row that is not valid', async () => {
    const calibration = { ...CALIBRATION, precision: 'int8' as const };
    const store = await open('calibrated');
    await store.setThreshold(0.55, calibration);
    await expect(
      store.setThreshold(0.5, { ...calibration, method: 'guess' as 'probes', targetFar: 2 }),
    ).rejects.toThrow(/invalid calibration record: method: .*; targetFar: /);
    expect(store.threshold).toBe(0.55); // the refused write changed nothing
    await store.close();
    const again = await open('calibrated');
    expect([again.threshold, again.isCalibrated, again.calibration]).toEqual([0.55, true, calibration]);
    await again.close();

    // Written by hand (psql, another tool): the row is checked when the collection is opened.
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    try {
      await pool.query(
        `UPDATE facerec_collections SET threshold = 'NaN', calibration = '{"method": "guess"}' WHERE name = 'calibrated'`,
      );
    } finally {
      await pool.end();
    }
    const error = await open('calibrated').catch((e: unknown) => e);
    expect(GalleryFormatError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /\?collection=calibrated: the collection's settings in facerec_collections are not valid \(threshold: .*; calibration\.method: /,
    );
  });

  it("reads another process's threshold and calibration again when matching, keeping its own on a bad row", async () => {
    const refused: Error[] = [];
    const serving = await open('recalibrated', {
      threshold: 0.4,
      refreshSeconds: 0,
      onReloadError: (e) => refused.push(e),
    });
    const calibrating = await open('recalibrated');
    const cached = await open('recalibrated', { refreshSeconds: 3600 });
    const query = new Float32Array(8).fill(1);
    try {
      await calibrating.add('someone', [{ embedding: query }]);
      await calibrating.setThreshold(0.2, {
        method: 'leave-one-out',
        targetFar: 0.01,
        achievedFar: 0,
        achievedFrr: 0,
        genuinePairs: 3,
        impostorPairs: 9,
        calibratedAt: '2026-12-03T00:00:00.000Z',
        equalErrorRate: { threshold: 0.2, rate: 0 },
        keyPoints: [],
        precision: 'fp32',
      });
      expect(serving.threshold).toBe(0.4); // not read yet
      const [match] = await serving.match([query]);
      expect(match!.identity).toBe('someone');
      expect([serving.threshold, serving.calibration?.precision]).toEqual([0.2, 'fp32']);
      await cached.match([query]);
      expect(cached.threshold).toBe(0.4); // within its refresh interval
      // A read of the settings that started before this handle's own setThreshold, and ends after it, does not
      // undo it: the handle's reads of the settings row are held back until its UPDATE is done.
      const slowPool = new pg.Pool({
        connectionString: server.connectionString,
        max: PGLITE_MAX_CONNECTIONS,
      });
      let holding = false;
      let updated: () => void = () => undefined;
      const updateDone = new Promise<void>((r) => {
        updated = r;
      });
      const send = slowPool.query.bind(slowPool) as (...args: unknown[]) => Promise<unknown>;
      (slowPool as unknown as { query: unknown }).query = async (...args: unknown[]) => {
        const sql = String(args[0]);
        if (holding && sql.includes('FROM facerec_collections WHERE name')) {
          const rows = await send(...args);
          await updateDone;
          await new Promise((r) => setTimeout(r, 20)); // and until setThreshold has returned
          return rows;
        }
        const result = await send(...args);
        if (sql.startsWith('UPDATE facerec_collections')) updated();
        return result;
      };
      const racer = await PostgresGalleryStore.open({
        pool: slowPool,
        collection: 'recalibrated',
        refreshSeconds: 0,
      });
      holding = true;
      try {
        const racing = racer.match([query]);
        await racer.setThreshold(0.3);
        await racing;
        expect(racer.threshold).toBe(0.3);
      } finally {
        await racer.close();
        await slowPool.end();
      }
      await calibrating.setThreshold(0.2);
      await serving.match([query]);
      expect(serving.threshold).toBe(0.2);

      const pool = new pg.Pool({ connectionString: server.connectionString, max: 1 });
      try {
        await pool.query(`UPDATE facerec_collections SET threshold = 'NaN' WHERE name = 'recalibrated'`);
        await serving.match([query]);
        expect(serving.threshold).toBe(0.2);
        expect(refused.map((e) => GalleryFormatError.isInstance(e))).toEqual([true]);
        await pool.query(`UPDATE facerec_collections SET threshold = 0.25 WHERE name = 'recalibrated'`);
        await serving.match([query]);
        expect(serving.threshold).toBe(0.25);
      } finally {
        await pool.end();
      }
    } finally {
      await Promise.all([serving.close(), calibrating.close(), cached.close()]);
    }
  });

  it('fails searches and health checks as GALLERY_NOT_FOUND while its collection or the tables are gone, not answering unknown', async () => {
    const refused: Error[] = [];
    const serving = await open('vanishing', { refreshSeconds: 0, onReloadError: (e) => refused.push(e) });
    const admin = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    const query = Float32Array.from({ length: 8 }, (_, k) => (k === 0 ? 1 : 0));
    const named = async () => (await serving.match([query], { threshold: 0.5 }))[0]!.identity;
    try {
      await serving.add('amy', [{ embedding: query }]);
      expect(await named()).toBe('amy');
      // Deleted by another process (`facerec gallery remove <url> --collection`): every face was answered unknown.
      await (await open('vanishing')).drop();
      const gone = {
        code: 'GALLERY_NOT_FOUND',
        message: expect.stringContaining('the collection was deleted'),
      };
      await expect(named()).rejects.toMatchObject(gone);
      await expect(serving.checkReachable()).rejects.toMatchObject(gone);
      await expect(named()).rejects.toMatchObject(gone);
      // Listed empty, or a removal answered "no such example", as if the collection were there.
      await expect(serving.list()).rejects.toMatchObject(gone);
      await expect(serving.listPage({ offset: 0, limit: 10 })).rejects.toMatchObject(gone);
      await expect(serving.removeExamples(['abc'])).rejects.toMatchObject(gone);
      expect(refused, 'said once, not at every read').toHaveLength(1);
      // Made again for another embedder: not searched with this one's embeddings.
      const other = await open('vanishing', {
        embedder: { ...CONFORMANCE_EMBEDDER, modelId: 'another-model' },
      });
      await other.add('not-amy', [{ embedding: query }]);
      const mismatch = { code: 'EMBEDDER_MISMATCH' };
      await expect(named()).rejects.toMatchObject(mismatch);
      await expect(serving.checkReachable()).rejects.toMatchObject(mismatch);
      await other.drop();
      expect(refused.map((e) => (e as { code?: string }).code)).toEqual([
        'GALLERY_NOT_FOUND',
        'EMBEDDER_MISMATCH',
      ]);
      // Back (copied again): found at the next read.
      const copy = await open('vanishing');
      await copy.add('amy', [{ embedding: query }]);
      await copy.close();
      expect(await named()).toBe('amy');
      await serving.checkReachable();
      // The tables gone (a database recreated under the running store): the same, said as such.
      const tables = { code: 'GALLERY_NOT_FOUND', message: expect.stringContaining('has no facerec tables') };
      for (const table of ['facerec_collections', 'facerec_examples']) {
        await admin.query(`ALTER TABLE ${table} RENAME TO ${table}_away`);
        try {
          await expect(named()).rejects.toMatchObject(tables);
          await expect(serving.checkReachable(), table).rejects.toMatchObject(tables);
        } finally {
          await admin.query(`ALTER TABLE ${table}_away RENAME TO ${table}`);
        }
        expect(await named()).toBe('amy');
      }
      await serving.checkReachable();
    } finally {
      await admin.end();
      await serving.close();
    }
  });

  it('opened by URL with a logger, warns of a settings row it refuses, naming the location without the password', async () => {
    const warnings: { message: string; details?: Record<string, unknown> }[] = [];
    const url = new URL(server.connectionString);
    const password = url.password;
    url.password = '';
    url.searchParams.set('password', password || 'unused');
    url.searchParams.set('collection', 'logged');
    const seed = await open('logged');
    await seed.close();
    const store = await openGalleryStoreFromUrl(url.toString(), {
      refreshSeconds: 0,
      logger: { info: () => undefined, warn: (message, details) => warnings.push({ message, details }) },
    });
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 1 });
    try {
      await pool.query(`UPDATE facerec_collections SET metric = 'cosine' WHERE name = 'logged'`);
      await store.match([new Float32Array(8).fill(1)]);
      expect(warnings).toEqual([
        {
          message: 'gallery settings refresh refused; keeping the loaded ones',
          details: { location: store.location, reason: 'INVALID_GALLERY' },
        },
      ]);
      expect(store.location).toContain('password=***');
      expect(store.location).not.toContain(`password=${password || 'unused'}`);
      expect(store.metric).toBe('euclidean');
    } finally {
      await pool.end();
      await store.close();
    }
  });

  it('says a server that cannot be reached is unreachable, naming the store without the password', async () => {
    // A port nothing listens on (a server just closed frees it).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const error = await PostgresGalleryStore.open({
      connectionString: `postgres://app:s3cret@127.0.0.1:${port}/faces`,
      collection: 'people',
      embedder: CONFORMANCE_EMBEDDER,
    }).catch((e: unknown) => e);
    expect(FacerecError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'GALLERY_UNREACHABLE' });
    expect(String((error as Error).message)).toBe(
      `cannot reach the Postgres server of postgres://app:***@127.0.0.1:${port}/faces?collection=people (ECONNREFUSED)`,
    );
  });

  it('outlives a server restart: a cut idle connection is reported (not thrown), queries meanwhile fail as GALLERY_UNREACHABLE, then work again', async () => {
    // Its own server, stopped and started again on the same port over the same database.
    const db = await PGlite.create({ extensions: { vector } });
    let socket = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1' });
    await socket.start();
    const address = socket.getServerConn();
    const port = Number(address.split(':').at(-1));
    const lost: Error[] = [];
    const told: string[] = [];
    const store = await PostgresGalleryStore.open({
      connectionString: `postgres://postgres:pw@${address}/postgres`,
      collection: 'restart',
      embedder: CONFORMANCE_EMBEDDER,
      maxConnections: PGLITE_MAX_CONNECTIONS,
      refreshSeconds: 0,
      onConnectionError: (error) => lost.push(error),
      onReloadError: (error) => told.push((error as FacerecError).code),
      onReachableAgain: () => told.push('reachable again'),
    });
    const query = Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]);
    try {
      await store.add('ada', [{ embedding: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]) }]);
      // The pool now holds an idle connection, which the stop cuts: without a listener, an 'error' event
      // nobody handles ended the process.
      await socket.stop();
      await vi.waitFor(() => expect(lost.length).toBeGreaterThan(0));
      const error = await store.identities().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'GALLERY_UNREACHABLE' });
      expect((error as Error).message).toBe(
        `cannot reach the Postgres server of postgres://postgres:***@${address}/postgres?collection=restart (ECONNREFUSED)`,
      );
      // Matches meanwhile fail as unreachable; the settings' reads say so once, not at every match.
      for (let i = 0; i < 3; i++) {
        await expect(store.match([query])).rejects.toMatchObject({ code: 'GALLERY_UNREACHABLE' });
      }
      expect(told).toEqual(['GALLERY_UNREACHABLE']);
      // A health check (`facerec serve`'s /health) reads the settings now and says so too, nothing more logged.
      await expect(store.checkReachable()).rejects.toMatchObject({ code: 'GALLERY_UNREACHABLE' });
      expect(told).toEqual(['GALLERY_UNREACHABLE']);
      socket = new PGLiteSocketServer({ db, port, host: '127.0.0.1' });
      await socket.start();
      await store.checkReachable();
      expect(await store.identities()).toEqual(['ada']);
      expect((await store.match([query], { threshold: 0.5 }))[0]!.identity).toBe('ada');
      await store.match([query]);
      expect(told).toEqual(['GALLERY_UNREACHABLE', 'reachable again']);
    } finally {
      await store.close();
      await socket.stop();
      await db.close();
    }
  });

  it('fails a call the server does not answer within queryTimeoutMs as GALLERY_UNREACHABLE, and works again after', async () => {
    // The server stops answering, as a frozen host or a partition that drops packets does: the connection stays
    // open, no answer comes.
    const relay = await relayTo(server.connectionString);
    const store = await open(`timeout-${randomBytes(4).toString('hex')}`, {
      connectionString: relay.connectionString,
      queryTimeoutMs: 500,
    });
    try {
      await store.add('ada', [{ embedding: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]) }]);
      relay.hold(true);
      const started = performance.now();
      const error = await store
        .add('bob', [{ embedding: Float32Array.from([0, 1, 0, 0, 0, 0, 0, 0]) }])
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'GALLERY_UNREACHABLE' });
      expect((error as Error).message).toMatch(/\(no answer within the query timeout\)$/);
      // One query's timeout: the transaction's connection is dropped, not rolled back behind the stuck query.
      // (≈ 505 ms here; with the ROLLBACK waiting for its own timeout behind the stuck query, ≈ 1,005 ms.)
      expect(performance.now() - started).toBeLessThan(900);
      await worksAgain(relay, store);
    } finally {
      await store.close();
      relay.close();
    }
  });

  it('fails a call whose connection is lost mid-query (the server killed) as GALLERY_UNREACHABLE, and the process lives on', async () => {
    // The query is held (no answer), then every connection cut, as a server killed mid-query does.
    const relay = await relayTo(server.connectionString);
    const store = await open(`lost-${randomBytes(4).toString('hex')}`, {
      connectionString: relay.connectionString,
    });
    try {
      await store.add('ada', [{ embedding: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0]) }]);
      relay.hold(true);
      const adding = store
        .add('bob', [{ embedding: Float32Array.from([0, 1, 0, 0, 0, 0, 0, 0]) }])
        .catch((e: unknown) => e);
      await new Promise((resolve) => setTimeout(resolve, 200));
      relay.cut();
      const error = await adding;
      expect(error).toMatchObject({ code: 'GALLERY_UNREACHABLE' });
      expect((error as Error).message).toMatch(/\(connection lost\)$/);
      await worksAgain(relay, store);
    } finally {
      await store.close();
      relay.close();
    }
  });

  it('names the store and what to install when the server has no pgvector; refuses a URL it cannot parse unshown', async () => {
    const db = await PGlite.create();
    const socket = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1' });
    await socket.start();
    try {
      const error = await PostgresGalleryStore.open({
        connectionString: `postgres://postgres:pw@${socket.getServerConn()}/postgres`,
        collection: 'plain',
        embedder: CONFORMANCE_EMBEDDER,
        maxConnections: PGLITE_MAX_CONNECTIONS,
      }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'GALLERY_STORE_REFUSED' });
      expect((error as Error).message).toMatch(
        new RegExp(
          `^postgres://postgres:\\*\\*\\*@${socket.getServerConn()}/postgres\\?collection=plain: .*extension "vector".*: install pgvector on the server`,
        ),
      );
    } finally {
      await socket.stop();
      await db.close();
    }
    // Unparsable, or parsable only as another host (`12?SECRET`: host "app", port 12, the rest a query).
    for (const url of [
      'postgres://app:pa/ss@db:99999/faces',
      'postgres://app:12?SECRET@127.0.0.1:5432/postgres?collection=staff',
      'postgres://app:5432/SECRET@127.0.0.1:5432/postgres',
      'postgres://app:12#SECRET@127.0.0.1:5432/postgres',
    ]) {
      const bad = await openGalleryStoreFromUrl(url, {}).catch((e: unknown) => e);
      expect((bad as Error).message).toBe(
        '@facerec/gallery-postgres: the store URL is not a valid postgres:// URL (percent-encode @, /, ?, # and : in a password, or use PGPASSWORD)',
      );
    }
    // A misspelt parameter would open the default collection; one node-postgres does not read would be ignored.
    // Refused before connecting (nothing listens on port 1), naming the keys, never a value.
    const misspelt = await openGalleryStoreFromUrl(
      'postgres://app@127.0.0.1:1/postgres?colection=staff&connect_timeout=SECRET&sslmode=disable&collection=x',
      {},
    ).catch((e: unknown) => e);
    expect(misspelt).toBeInstanceOf(InvalidOptionsError);
    expect((misspelt as Error).message).toMatch(
      /^@facerec\/gallery-postgres: unknown query parameters "colection", "connect_timeout" in the store URL \("connect_timeout": libpq's, which node-postgres does not read from a URL: remove it\); facerec reads collection, search, ef_search, max_connections, the connection sslmode, .*statement_timeout/,
    );
    expect((misspelt as Error).message).not.toContain('SECRET');
    for (const name of ['ef_search', 'max_connections']) {
      for (const value of ['abc', '0', '1001', '', '40.5']) {
        await expect(
          openGalleryStoreFromUrl(`postgres://app@127.0.0.1:1/postgres?${name}=${value}`, {}),
        ).rejects.toThrow(
          `@facerec/gallery-postgres: ?${name}= must be a whole number from 1 to 1000, got ${JSON.stringify(value)}`,
        );
      }
    }
    // Timeouts node-postgres reads without a check: `abc` made every call time out, said as a server out of reach.
    for (const name of [
      'query_timeout',
      'statement_timeout',
      'lock_timeout',
      'idle_in_transaction_session_timeout',
    ]) {
      for (const value of ['abc', '-5', '', '1.5']) {
        await expect(
          openGalleryStoreFromUrl(`postgres://app@127.0.0.1:1/postgres?${name}=${value}`, {}),
        ).rejects.toThrow(
          `@facerec/gallery-postgres: ?${name}= must be a whole number of milliseconds (0: none), got ${JSON.stringify(value)}`,
        );
      }
    }
    // A password in the query with an unencoded & would show its tail as a name: nothing is named then.
    const tail = await openGalleryStoreFromUrl(
      'postgres://app@127.0.0.1:1/postgres?password=abc&TAIL=1',
      {},
    ).catch((e: unknown) => e);
    expect((tail as Error).message).toMatch(
      /^@facerec\/gallery-postgres: unknown query parameter \(not named/,
    );
    expect((tail as Error).message).not.toMatch(/TAIL|abc/);
    await expect(
      openGalleryStoreFromUrl('postgres://app@127.0.0.1:1/postgres?replication=database', {}),
    ).rejects.toThrow('replication= would open a replication connection');
    // Two collections (a URL assembled from pieces): which one was meant is not guessed.
    await expect(
      openGalleryStoreFromUrl('postgres://app@127.0.0.1:1/postgres?collection=staff&collection=guests', {}),
    ).rejects.toThrow('?collection= is given more than once in the store URL');
  });

  it('names its location without the password', () => {
    expect(redactConnectionString('postgres://app:s3cret@db.example:5432/faces')).toBe(
      'postgres://app:***@db.example:5432/faces',
    );
    // pg reads passwords from the query string too.
    expect(
      redactConnectionString(
        'postgres://app@db.example/faces?password=s3cret&sslpassword=k3y&sslmode=require',
      ),
    ).toBe('postgres://app@db.example/faces?password=***&sslpassword=***&sslmode=require');
    // Unencoded #, ? and @ in a password: nothing of it is shown, whatever the URL parser makes of it.
    expect(redactConnectionString('postgres://app:p@ss#w0rd@db.example:5432/faces')).toBe(
      'postgres://app:***@db.example:5432/faces',
    );
    expect(redactConnectionString('postgres://app:pa?ss/wd@db.example/faces?sslmode=require')).toBe(
      'postgres://app:***@db.example/faces?sslmode=require',
    );
    expect(redactConnectionString('host=db password=KwPw-3')).toBe('postgres (connection string not shown)');
    expect(hnswIndexName('x'.repeat(500))).toMatch(/^facerec_hnsw_[0-9a-f]{16}$/);
  });
});

/**
 * The server answers again: the store works on a fresh connection (the one cut or dropped is not handed out again),
 * with what it held before the fault ('ada').
 */
async function worksAgain(
  relay: { hold: (on: boolean) => void },
  store: PostgresGalleryStore,
): Promise<void> {
  relay.hold(false);
  await store.add('carol', [{ embedding: Float32Array.from([0, 0, 1, 0, 0, 0, 0, 0]) }]);
  expect(await store.identities()).toEqual(['ada', 'carol']);
}

/**
 * A relay to a Postgres server whose bytes can be held (no answer comes, the connections stay open) and whose
 * connections can be cut, as a frozen or a killed server does.
 */
async function relayTo(target: string) {
  let held = false;
  const sockets = new Set<Socket>();
  const [host, port] = target.split('@')[1]!.split('/')[0]!.split(':');
  const relay = createServer((client) => {
    const upstream = connect(Number(port), host!);
    sockets.add(client).add(upstream);
    client.on('data', (data) => held || upstream.write(data));
    upstream.on('data', (data) => held || client.write(data));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    connectionString: `postgres://postgres@127.0.0.1:${(relay.address() as { port: number }).port}/postgres`,
    hold: (on: boolean) => {
      held = on;
    },
    cut: () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    close: () => relay.close(),
  };
}
