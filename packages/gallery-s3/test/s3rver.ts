/**
 * A local S3-compatible server for tests: s3rver (files in a temporary folder) on a random loopback port, with
 * atomic objects and S3's conditional writes added (see {@link atomicObjects}), and an SDK client configured
 * for it (path-style, its fixed credentials, checksums only where required, which s3rver does not know).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export const TEST_BUCKET = 'facerec-galleries';

/** A running s3rver. */
export interface LocalS3 {
  readonly endpoint: string;
  client(): S3Client;
  stop(): Promise<void>;
}

/** What {@link atomicObjects} uses of s3rver's Koa app, its context and its file store (not in its published types). */
interface KoaContext {
  readonly method: string;
  readonly path: string;
  readonly querystring: string;
  readonly req: AsyncIterable<unknown>;
  get(header: string): string;
  status: number;
  type: string;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface StoredObject {
  readonly bucket: string;
  readonly key: string;
  readonly metadata: Record<string, string>;
  readonly content: Buffer | AsyncIterable<Buffer>;
}
interface S3rverApp {
  readonly middleware: Middleware[];
  readonly store: {
    existsObject(bucket: string, key: string): Promise<boolean>;
    getMetadata(bucket: string, key: string): Promise<{ etag: string }>;
    getResourcePath(bucket: string, key: string, resource: string): string;
    putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
    putObject(object: StoredObject): Promise<{ size: number; md5: string }>;
  };
}

/**
 * s3rver writes an object over its file in place and answers before the write is on disk, and a GET reads the
 * length from the metadata file, then streams the object file: a GET that meets a PUT of the same key gets a
 * cut or mixed body (seen in CI as a gallery that is "not valid JSON"). S3 objects are atomic, so here a PUT
 * goes to a staging file renamed over the object, done before the request ends (s3rver's own code, minus the
 * in-place write).
 */
function atomicPuts(store: S3rverApp['store']): void {
  store.putObject = async (object) => {
    const content = Buffer.isBuffer(object.content) ? object.content : await buffer(object.content);
    const md5 = createHash('md5').update(content).digest('hex');
    const target = store.getResourcePath(object.bucket, object.key, 'object');
    const staging = `${target}.${randomBytes(6).toString('hex')}.staging`;
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(staging, content);
    await rename(staging, target);
    await store.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size: content.length, md5 };
  };
}

/**
 * Requests on one object key run one at a time, a GET's body read whole before the next starts (its metadata
 * and file then belong to one version, as an S3 object does), and S3's conditional writes (`If-Match: <ETag>`,
 * `If-None-Match: *` on PutObject: 412 PreconditionFailed when the condition does not hold), which s3rver
 * ignores, are checked in that turn: the S3 store's optimistic concurrency meets a server that refuses a stale
 * write, as S3 does. `If-Match` on a missing key and `If-None-Match` other than `*` get 412 too.
 */
function atomicObjects(app: S3rverApp): Middleware {
  const queues = new Map<string, Promise<unknown>>();
  const unquoted = (etag: string) => etag.replace(/"/g, '');
  return async (ctx, next) => {
    const [bucket = '', ...rest] = decodeURIComponent(ctx.path).slice(1).split('/');
    const key = rest.join('/');
    // Object requests only, not bucket requests, parts of a multipart upload or sub-resources.
    const subresource = /(^|&)(uploadId|partNumber|acl|tagging)=?/.test(ctx.querystring);
    if (!key || subresource) return next();
    const id = `${bucket}/${key}`;
    const turn = (queues.get(id) ?? Promise.resolve()).then(async () => {
      const ifMatch = ctx.method === 'PUT' ? ctx.get('if-match') : '';
      const ifNoneMatch = ctx.method === 'PUT' ? ctx.get('if-none-match') : '';
      if (ifMatch || ifNoneMatch) {
        const exists = await app.store.existsObject(bucket, key);
        const etag = exists ? unquoted((await app.store.getMetadata(bucket, key)).etag) : undefined;
        const holds = ifNoneMatch === '*' ? !exists : etag !== undefined && unquoted(ifMatch) === etag;
        if (!holds) {
          for await (const _ of ctx.req); // the upload is refused: read it to the end, as a server does
          ctx.status = 412;
          ctx.type = 'application/xml';
          ctx.body =
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of ' +
            `the pre-conditions you specified did not hold</Message><Condition>${ifMatch ? 'If-Match' : 'If-None-Match'}</Condition></Error>`;
          return;
        }
      }
      await next();
      if (ctx.body instanceof Readable) ctx.body = await buffer(ctx.body);
    });
    const tail = turn.catch(() => undefined);
    queues.set(id, tail);
    await turn;
    if (queues.get(id) === tail) queues.delete(id);
  };
}

/**
 * Starts the server; `{ conditionalWrites: false }` leaves out S3's conditional writes, as stock s3rver (a PUT
 * is stored whatever its `If-Match` or `If-None-Match`).
 */
export async function startLocalS3(options: { conditionalWrites?: boolean } = {}): Promise<LocalS3> {
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
  atomicPuts(app.store);
  if (options.conditionalWrites !== false) {
    app.middleware.splice(app.middleware.length - 1, 0, atomicObjects(app));
  }
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
