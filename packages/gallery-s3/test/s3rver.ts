/**
 * A local S3-compatible server for tests: s3rver (files in a temporary folder) on a random loopback port, and
 * an SDK client configured for it (path-style, its fixed credentials, checksums only where required, which
 * s3rver does not know).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export const TEST_BUCKET = 'facerec-galleries';

/** A running s3rver. */
export interface LocalS3 {
  readonly endpoint: string;
  client(): S3Client;
  stop(): Promise<void>;
}

export async function startLocalS3(): Promise<LocalS3> {
  const directory = await mkdtemp(path.join(tmpdir(), 'facerec-s3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: [{ name: TEST_BUCKET, configs: [] }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: S3Client[] = [];
  return {
    endpoint,
    client() {
      const client = new S3Client({
        endpoint,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const c of clients) c.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
