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
  // A checked-out client emits 'error' when its connection is lost (the server killed or restarted), also with a
  // query in flight, and the pool listens only to idle ones: unheard, the event ended the process. The query that
  // was running fails too, with the error the caller turns into GALLERY_UNREACHABLE; the connection is dropped.
  const lost = () => {
    drop = true;
  };
  client.on('error', lost);
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
    client.off('error', lost);
    client.release(drop);
  }
}
