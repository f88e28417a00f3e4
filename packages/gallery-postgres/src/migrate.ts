import { readdir, readFile } from 'node:fs/promises';
import { GalleryFormatError } from '@facerec/framework';
import type pg from 'pg';
import { inTransaction } from './transaction.js';

/** The folder of SQL migrations shipped with the package (`migrations/NNN_name.sql`). */
export const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url);

/** One migration file. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The package's migrations, in version order. */
export async function readMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_[\w-]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number.parseInt(file, 10),
      name: file.replace(/\.sql$/, ''),
      sql: await readFile(new URL(file, MIGRATIONS_DIR), 'utf8'),
    })),
  );
}

// Any fixed number: every facerec process migrating the same database takes the same advisory lock.
const MIGRATION_LOCK = 0x66616365; // 'face'

/**
 * Brings the database's facerec schema up to date: applies, in one transaction and under an advisory lock (so
 * concurrent starts do not race), every migration not yet recorded in `facerec_schema_migrations`. Resolves to
 * the versions applied (none when up to date). Needs the `vector` extension to be available on the server
 * (`CREATE EXTENSION` rights the first time, e.g. `rds_superuser` on RDS).
 */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const migrations = await readMigrations();
  // Up to date already (the usual case): said by a read alone, so a reader's role (SELECT only: a recognition
  // function, `facerec serve`) opens the store without the rights to create or alter the tables.
  if (await upToDate(pool, migrations)) return [];
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS facerec_schema_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM facerec_schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    // A database migrated by a newer @facerec/gallery-postgres: its tables may mean what this code does not know.
    const known = new Set(migrations.map((m) => m.version));
    const newer = [...done].filter((v) => !known.has(v)).sort((a, b) => a - b);
    if (newer.length) {
      throw new GalleryFormatError(
        `the database's facerec schema has migration ${newer.join(', ')}, which this @facerec/gallery-postgres ` +
          `(migrations up to ${Math.max(...known)}) does not know: a newer version wrote it; upgrade ` +
          '@facerec/gallery-postgres',
        { problem: 'format-version' },
      );
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO facerec_schema_migrations (version, name) VALUES ($1, $2)', [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** True when every migration is recorded and none that this code does not know (read without a lock). */
async function upToDate(pool: pg.Pool, migrations: readonly Migration[]): Promise<boolean> {
  // Two statements: a table that does not exist fails a statement that names it, whichever branch runs.
  const [exists] = (
    await pool.query<{ name: string | null }>(`SELECT to_regclass('facerec_schema_migrations')::text AS name`)
  ).rows;
  if (!exists?.name) return false;
  const versions = (
    await pool.query<{ version: number }>('SELECT version FROM facerec_schema_migrations ORDER BY version')
  ).rows.map((r) => r.version);
  const known = migrations.map((m) => m.version);
  return versions.length === known.length && known.every((v, i) => versions[i] === v);
}
