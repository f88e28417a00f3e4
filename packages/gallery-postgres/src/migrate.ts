import { readdir, readFile } from 'node:fs/promises';
import { FacerecError, GalleryFormatError } from '@facerec/framework';
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
 * (`CREATE EXTENSION` rights the first time, e.g. `rds_superuser` on RDS), and a migration needs the rights
 * of the tables' owner; a schema already current is found so by reading alone.
 *
 * @param options.location - the store, for messages (without credentials).
 * @throws GalleryFormatError when the schema has a migration this code does not know (a newer version's).
 * @throws FacerecError `GALLERY_STORE_REFUSED` when a migration is pending that this role may not apply.
 */
export async function migrate(
  pool: pg.Pool,
  options: { readonly location?: string } = {},
): Promise<number[]> {
  const migrations = await readMigrations();
  // Up to date already (the usual case): said by a read alone, so a reader's role (SELECT only: a recognition
  // function, `facerec serve`) opens the store without the rights to create or alter the tables; a newer
  // version's schema is refused the same way, before any write.
  const recorded = await recordedVersions(pool);
  if (recorded) {
    assertKnown(recorded, migrations);
    if (migrations.every((m) => recorded.includes(m.version))) return [];
  }
  try {
    return await inTransaction(pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(
        `CREATE TABLE IF NOT EXISTS facerec_schema_migrations (
           version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const done = (
        await client.query<{ version: number }>('SELECT version FROM facerec_schema_migrations')
      ).rows.map((r) => r.version);
      assertKnown(done, migrations);
      const applied: number[] = [];
      for (const m of migrations) {
        if (done.includes(m.version)) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO facerec_schema_migrations (version, name) VALUES ($1, $2)', [
          m.version,
          m.name,
        ]);
        applied.push(m.version);
      }
      return applied;
    });
  } catch (error) {
    // 42501 insufficient_privilege (a role that may not create or alter the tables): said as the step it is,
    // with what to do, rather than Postgres's "must be owner of table facerec_examples" alone.
    if ((error as { code?: unknown }).code !== '42501') throw error;
    const pending = migrations.filter((m) => !recorded?.includes(m.version)).map((m) => m.name);
    throw new FacerecError(
      'GALLERY_STORE_REFUSED',
      `${options.location ? `${options.location}: ` : ''}the database's facerec schema needs migration ` +
        `${pending.join(', ')}, which this role may not apply (${(error as Error).message}): open the store once ` +
        "as the facerec tables' owner (the role that created them), e.g. `facerec gallery list <store URL>` with " +
        'its credentials, then again as this role',
      { cause: error },
    );
  }
}

/** The migrations recorded, or `undefined` when the table that records them does not exist yet (read only). */
async function recordedVersions(pool: pg.Pool): Promise<number[] | undefined> {
  // Two statements: a table that does not exist fails a statement that names it, whichever branch runs.
  const [exists] = (
    await pool.query<{ name: string | null }>(`SELECT to_regclass('facerec_schema_migrations')::text AS name`)
  ).rows;
  if (!exists?.name) return undefined;
  return (
    await pool.query<{ version: number }>('SELECT version FROM facerec_schema_migrations ORDER BY version')
  ).rows.map((r) => r.version);
}

/** Refuses a schema that a newer @facerec/gallery-postgres migrated: its tables may mean what this code does not know. */
function assertKnown(recorded: readonly number[], migrations: readonly Migration[]): void {
  const known = new Set(migrations.map((m) => m.version));
  const newer = recorded.filter((v) => !known.has(v)).sort((a, b) => a - b);
  if (newer.length) {
    throw new GalleryFormatError(
      `the database's facerec schema has migration ${newer.join(', ')}, which this @facerec/gallery-postgres ` +
        `(migrations up to ${Math.max(...known)}) does not know: a newer version wrote it; upgrade ` +
        '@facerec/gallery-postgres',
      { problem: 'format-version' },
    );
  }
}
