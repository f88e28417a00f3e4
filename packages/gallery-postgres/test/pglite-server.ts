/**
 * A real PostgreSQL with pgvector for tests and benchmarks, without installing a server: PGlite (Postgres
 * compiled to WebAssembly) with its pgvector extension, served on a random loopback port by pglite-socket, so
 * the store reaches it through `pg` and the wire protocol exactly as it reaches RDS or Aurora.
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * Connections each client pool may open to a PGlite server. PGlite is one Postgres session: pglite-socket
 * queues the messages of several connections into it, and the extended-protocol messages of two connections
 * can interleave ("unnamed prepared statement does not exist"). So every pool in the tests keeps one
 * connection, and a test uses several stores one after the other. A real server has a session per connection.
 */
export const PGLITE_MAX_CONNECTIONS = 1;

/** A running PGlite server. */
export interface PgliteServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly connectionString: string;
  stop(): Promise<void>;
}

/** Starts an in-memory PGlite with pgvector on a free loopback port. */
export async function startPgliteServer(): Promise<PgliteServer> {
  const db = await PGlite.create({ extensions: { vector } });
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 32 });
  await server.start();
  return {
    connectionString: `postgres://postgres@${server.getServerConn()}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
