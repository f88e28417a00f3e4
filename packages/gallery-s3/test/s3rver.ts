/**
 * A local S3-compatible server for tests: s3rver (files in a temporary folder) on a random loopback port, with
 * S3's conditional writes added (see {@link conditionalWrites}), and an SDK client configured for it (path-style, its fixed credentials, checksums only where required, which
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

/** What {@link conditionalWrites} uses of s3rver's Koa app and its context (not in its published types). */
interface KoaContext {
  readonly method: string;
  readonly path: string;
  readonly querystring: string;
  readonly req: AsyncIterable<unknown>;
  get(header: string): string;
  status: number;
  type: string;
  body: string;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverApp {
  readonly middleware: Middleware[];
  readonly store: {
    existsObject(bucket: string, key: string): Promise<boolean>;
    getMetadata(bucket: string, key: string): Promise<{ etag: string }>;
  };
}

/**
 * S3's conditional writes (`If-Match: <ETag>`, `If-None-Match: *` on PutObject: 412 PreconditionFailed when
 * the condition does not hold), which s3rver ignores: written here, in front of its routes, so that the S3
 * store's optimistic concurrency meets a server that refuses a stale write, as S3 does. The check and the
 * write of one key run one at a time, as they are atomic in S3 (unconditional writes and deletes do not wait
 * their turn: the tests need no more). `If-Match` on a missing key and `If-None-Match` other than `*` get 412 too.
 */
function conditionalWrites(app: S3rverApp): Middleware {
  const queues = new Map<string, Promise<unknown>>();
  const unquoted = (etag: string) => etag.replace(/"/g, '');
  return async (ctx, next) => {
    const ifMatch = ctx.get('if-match');
    const ifNoneMatch = ctx.get('if-none-match');
    // PutObject only (the SDK adds `x-id=PutObject`), not parts of a multipart upload or sub-resources.
    const subresource = /(^|&)(uploadId|partNumber|acl|tagging)=?/.test(ctx.querystring);
    if (ctx.method !== 'PUT' || subresource || (!ifMatch && !ifNoneMatch)) return next();
    const [bucket = '', ...rest] = decodeURIComponent(ctx.path).slice(1).split('/');
    const key = rest.join('/');
    const id = `${bucket}/${key}`;
    const turn = (queues.get(id) ?? Promise.resolve()).then(async () => {
      const exists = await app.store.existsObject(bucket, key);
      const etag = exists ? unquoted((await app.store.getMetadata(bucket, key)).etag) : undefined;
      const holds = ifNoneMatch === '*' ? !exists : etag !== undefined && unquoted(ifMatch) === etag;
      if (holds) return next();
      for await (const _ of ctx.req); // the upload is refused: read it to the end, as a server does
      ctx.status = 412;
      ctx.type = 'application/xml';
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of ' +
        `the pre-conditions you specified did not hold</Message><Condition>${ifMatch ? 'If-Match' : 'If-None-Match'}</Condition></Error>`;
    });
    queues.set(
      id,
      turn.catch(() => undefined),
    );
    await turn;
  };
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
  const app = server as unknown as S3rverApp;
  // Just before the router: after s3rver's own request handling (logging, virtual hosts, authentication).
  app.middleware.splice(app.middleware.length - 1, 0, conditionalWrites(app));
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
