import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';

/** A real DynamoDB implementation (dynalite, in memory) on a random loopback port, with one idempotency table. */
export interface LocalDynamoDb {
  readonly endpoint: string;
  readonly table: string;
  /** A client for it (fixed test credentials; dynalite checks none). */
  client(): DynamoDBClient;
  close(): Promise<void>;
}

/**
 * Starts dynalite in this process and creates `table` with the layout the construct creates: partition key
 * `id` (string), on-demand. (dynalite has no TTL API: the tests read the `expiration` attribute instead.)
 */
export async function startDynalite(table = 'facerec-idempotency'): Promise<LocalDynamoDb> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clients: DynamoDBClient[] = [];
  const client = () => {
    const made = new DynamoDBClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    clients.push(made);
    return made;
  };
  await client().send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  return {
    endpoint,
    table,
    client,
    async close() {
      for (const c of clients) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
