import type pg from 'pg';

/** node-postgres's error for a query the server did not answer within `query_timeout` (it has no code). */
export function isQueryTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Query read timeout';
}

/**
 * Runs `work` in a transaction on one connection of `pool`; an error rolls it back and propagates. A
 * connection whose query went unanswered (`query_timeout`) may still be busy on the server: it is dropped, not
 * rolled back (the ROLLBACK would wait behind that query) nor handed to the next caller; the server rolls the
 * transaction back when the connection closes.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let drop = false;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    drop = isQueryTimeout(error);
    if (!drop) await client.query('ROLLBACK').catch(() => (drop = true));
    throw error;
  } finally {
    client.release(drop);
  }
}
