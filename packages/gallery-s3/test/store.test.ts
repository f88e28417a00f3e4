import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FileGallery } from '@facerec/framework';
import { CONFORMANCE_EMBEDDER, describeGalleryStoreConformance } from '@facerec/framework/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseS3Url, S3GalleryStore } from '../src/index.js';
import { type LocalS3, startLocalS3, TEST_BUCKET } from './s3rver.js';

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startLocalS3();
});
afterAll(async () => {
  await s3?.stop();
});

describeGalleryStoreConformance('S3 gallery file (s3rver)', () => {
  const prefix = randomBytes(4).toString('hex');
  const client = s3.client();
  return {
    open: (name, embedder) =>
      S3GalleryStore.open({
        url: `s3://${TEST_BUCKET}/${prefix}/${name}.json`,
        client,
        embedder,
        refreshSeconds: 0,
      }),
  };
});

const axis = (i: number) => Float32Array.from({ length: 8 }, (_, j) => (j === i ? 1 : 0));
const galleryText = (
  names: string[],
  modelId = CONFORMANCE_EMBEDDER.modelId,
  matching: { metric?: 'euclidean' | 'cosine'; threshold?: number } = {},
) =>
  FileGallery.create({
    embedder: { ...CONFORMANCE_EMBEDDER, modelId },
    threshold: matching.threshold ?? 0.5,
    ...(matching.metric ? { metric: matching.metric } : {}),
    identities: names.map((name, i) => ({ name, examples: [{ source: `${name}.jpg`, embedding: axis(i) }] })),
  }).toText();

describe('S3GalleryStore on Lambda: hot reload by ETag', () => {
  let client: S3Client;
  let key: string;
  let clock: number;
  let logs: { level: string; message: string; details?: Record<string, unknown> }[];
  let sent: { command: string; input: Record<string, unknown> }[];
  const upload = (text: string) =>
    client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: key, Body: text }));
  const open = (options: { refreshWaitSeconds?: number } = {}) =>
    S3GalleryStore.open({
      ...options,
      bucket: TEST_BUCKET,
      key,
      client,
      embedder: CONFORMANCE_EMBEDDER,
      refreshSeconds: 30,
      now: () => clock,
      logger: {
        info: (message, details) => logs.push({ level: 'info', message, details }),
        warn: (message, details) => logs.push({ level: 'warn', message, details }),
      },
    });
  const who = async (store: S3GalleryStore, i: number) => (await store.match([axis(i)]))[0]!.identity;
  /** S3 refusing connections while `down()` says so, answering as it does otherwise. */
  const refuseWhile = (down: () => boolean) => {
    const send = client.send.bind(client);
    client.send = ((command: never) =>
      down()
        ? Promise.reject(
            Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
          )
        : send(command)) as typeof client.send;
  };

  beforeEach(async () => {
    client = s3.client();
    key = `lambda/${randomBytes(4).toString('hex')}.json`;
    clock = 1_000_000;
    logs = [];
    sent = [];
    const send = client.send.bind(client);
    client.send = ((command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      sent.push({ command: command.constructor.name, input: command.input });
      return send(command as never);
    }) as typeof client.send;
    await upload(galleryText(['amy', 'bernadette']));
  });

  it('loads at init, then re-checks at most every refreshSeconds with a conditional GET', async () => {
    const store = await open();
    expect(await store.identities()).toEqual(['amy', 'bernadette']);
    expect(logs[0]).toMatchObject({ level: 'info', message: 'gallery loaded', details: { identities: 2 } });
    const loadedEtag = store.version;
    sent.length = 0;
    clock += 29_000;
    expect(await who(store, 0)).toBe('amy');
    expect(sent).toEqual([]);
    clock += 1_000;
    expect(await who(store, 0)).toBe('amy');
    // One GET, conditional on the loaded ETag; S3 answered 304 and nothing changed.
    expect(sent).toEqual([
      { command: 'GetObjectCommand', input: { Bucket: TEST_BUCKET, Key: key, IfNoneMatch: loadedEtag } },
    ]);
    expect(store.version).toBe(loadedEtag);
  });

  it('swaps in a new version without a restart: a newly enrolled person is answered within one interval', async () => {
    const store = await open();
    expect(await who(store, 2)).toBe('unknown');
    await upload(galleryText(['amy', 'bernadette', 'howard']));
    expect(await who(store, 2)).toBe('unknown');
    clock += 30_000;
    expect(await who(store, 2)).toBe('howard');
    expect(logs.at(-1)).toMatchObject({
      level: 'info',
      message: 'gallery updated',
      details: { identities: 3 },
    });
  });

  it('says when a swapped-in version matches differently (another metric or threshold): answers change with it', async () => {
    const store = await open();
    await upload(galleryText(['amy', 'bernadette'], undefined, { metric: 'cosine', threshold: 0.3 }));
    clock += 30_000;
    await who(store, 0);
    expect(logs.slice(-2)).toMatchObject([
      { level: 'info', message: 'gallery updated', details: { metric: 'cosine', threshold: 0.3 } },
      {
        level: 'warn',
        message: 'gallery now matches differently',
        details: { changed: 'metric euclidean → cosine, threshold 0.5 → 0.3' },
      },
    ]);
    // Another version matching as before: no warning.
    await upload(
      galleryText(['amy', 'bernadette', 'howard'], undefined, { metric: 'cosine', threshold: 0.3 }),
    );
    clock += 30_000;
    await who(store, 0);
    expect(logs.at(-1)).toMatchObject({
      level: 'info',
      message: 'gallery updated',
      details: { identities: 3 },
    });
  });

  it('answers from the version it holds when a re-check is slow; the new version serves the searches after it', async () => {
    const store = await open({ refreshWaitSeconds: 0.2 });
    await upload(galleryText(['amy', 'bernadette', 'howard']));
    const send = client.send.bind(client);
    // S3 taking 1.5 s to answer the conditional GET (an endpoint out of reach takes about 8 s to give up).
    client.send = ((command: never) =>
      new Promise((resolve) => setTimeout(resolve, 1_500)).then(() => send(command))) as typeof client.send;
    clock += 30_000;
    const started = performance.now();
    expect(await who(store, 2)).toBe('unknown');
    // Bounded by refreshWaitSeconds (0.2 s), not by the GET (1.5 s); the margin is for a loaded machine.
    expect(performance.now() - started).toBeLessThan(1_200);
    expect(logs.at(-1)).toMatchObject({ message: 'gallery loaded' });
    await vi.waitFor(() => expect(logs.at(-1)).toMatchObject({ message: 'gallery updated' }), {
      timeout: 10_000,
    });
    const gets = sent.filter((s) => s.command === 'GetObjectCommand').length;
    expect(await who(store, 2)).toBe('howard');
    // The searches during the slow look neither waited for it again nor started another.
    expect(sent.filter((s) => s.command === 'GetObjectCommand').length).toBe(gets);
  });

  it('does not make every search wait while S3 is silent: a look under way or S3 known out of reach is not waited for again', async () => {
    const store = await open({ refreshWaitSeconds: 2 });
    const send = client.send.bind(client);
    // S3 that accepts connections and never answers until released (a black-holed endpoint), then refuses them.
    let release: () => void = () => undefined;
    let mode: 'silent' | 'refusing' | 'up' = 'silent';
    client.send = ((command: never) => {
      if (mode === 'up') return send(command);
      if (mode === 'refusing') {
        return Promise.reject(
          Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
        );
      }
      return new Promise((_, reject) => {
        release = () => reject(Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }));
      });
    }) as typeof client.send;
    const timed = async () => {
      clock += 30_000;
      const started = performance.now();
      expect(await who(store, 0)).toBe('amy');
      return performance.now() - started;
    };
    // The search that starts the look waits for it (refreshWaitSeconds, 2 s); the next ones, while it hangs, do not.
    expect(await timed()).toBeGreaterThanOrEqual(1_900);
    for (let i = 0; i < 3; i++) expect(await timed()).toBeLessThan(1_000);
    // Nor does a health check: it says what the last look found (reachable, so far) at once.
    let started = performance.now();
    await store.checkReachable();
    expect(performance.now() - started).toBeLessThan(1_000);
    release();
    await vi.waitFor(() =>
      expect(logs.at(-1)).toMatchObject({ message: 'gallery store unreachable; keeping the loaded version' }),
    );
    // Known out of reach: a search starts the next look (refused, or silent again) without waiting for it.
    mode = 'silent';
    for (let i = 0; i < 3; i++) expect(await timed()).toBeLessThan(1_000);
    started = performance.now();
    await expect(store.checkReachable()).rejects.toMatchObject({ code: 'GALLERY_UNREACHABLE' });
    expect(performance.now() - started).toBeLessThan(1_000);
    release();
    mode = 'up';
    // A health check answers at once with what the last look found while one is under way, then looks itself.
    await vi.waitFor(async () => {
      await store.checkReachable().catch(() => undefined);
      expect(logs.at(-1)).toMatchObject({ level: 'info', message: 'gallery store reachable again' });
    });
    await store.close();
  });

  it('a health check waits for S3 to answer, not for the new version it brought to be parsed', async () => {
    const store = await open();
    await upload(galleryText(['amy', 'bernadette', 'howard']));
    // A parse that takes until released (a large gallery's second or more).
    let release: () => void = () => undefined;
    const parsed = new Promise<void>((resolve) => (release = resolve));
    const parse = (store as unknown as { parse: (text: string) => Promise<FileGallery> }).parse.bind(store);
    Object.assign(store, {
      parse: async (text: string) => {
        await parsed;
        return parse(text);
      },
    });
    const checked = store.checkReachable().then(() => 'answered');
    const waited = new Promise((resolve) => setTimeout(() => resolve('waited for the parse'), 3_000));
    expect(await Promise.race([checked, waited])).toBe('answered');
    release();
    await vi.waitFor(() => expect(logs.at(-1)).toMatchObject({ message: 'gallery updated' }));
    expect(await who(store, 2)).toBe('howard');
    await store.close();
  });

  it('a look nobody waits for cannot reject unhandled, even when the logger it reports to throws', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    let failing = false;
    process.on('unhandledRejection', onUnhandled);
    const store = await S3GalleryStore.open({
      bucket: TEST_BUCKET,
      key,
      client,
      embedder: CONFORMANCE_EMBEDDER,
      refreshSeconds: 30,
      refreshWaitSeconds: 1,
      now: () => clock,
      logger: {
        info: () => undefined,
        warn: () => {
          if (failing) throw new Error('the logger failed');
        },
      },
    });
    try {
      let down = true;
      refuseWhile(() => down);
      clock += 30_000;
      // The first look, waited for, finds S3 out of reach.
      expect((await store.match([axis(0)]))[0]!.identity).toBe('amy');
      // Known out of reach: the next look is not waited for; S3 is back with a corrupt version, refused, and the
      // logger told of it throws.
      failing = true;
      down = false;
      await upload('{"not": "a gallery"}');
      clock += 30_000;
      expect((await store.match([axis(0)]))[0]!.identity).toBe('amy');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await store.close();
    }
  });

  it('answers from the loaded version while S3 is out of reach, says so once, and says when it answers again', async () => {
    const store = await open();
    let down = true;
    refuseWhile(() => down);
    for (let i = 0; i < 3; i++) {
      clock += 30_000;
      expect(await who(store, 0)).toBe('amy');
    }
    // A health check (`facerec serve`'s /health) looks now, and says so: searches still answer meanwhile.
    const check = await store.checkReachable().catch((e: unknown) => e);
    expect(check).toMatchObject({ code: 'GALLERY_UNREACHABLE' });
    expect((check as Error).message).toMatch(/^cannot reach S3 of s3:\/\/.* \(ECONNREFUSED\)$/);
    down = false;
    await store.checkReachable();
    clock += 30_000;
    expect(await who(store, 1)).toBe('bernadette');
    clock += 30_000;
    await store.identities();
    expect(logs.filter((l) => l.message !== 'gallery loaded')).toEqual([
      expect.objectContaining({
        level: 'warn',
        message: 'gallery store unreachable; keeping the loaded version',
        details: expect.objectContaining({ reason: 'GALLERY_UNREACHABLE' }),
      }),
      expect.objectContaining({ level: 'info', message: 'gallery store reachable again' }),
    ]);
  });

  it('refuses a corrupt new version or one from another embedder, keeps the old one, and logs why', async () => {
    const store = await open();
    const good = store.version;
    const text = galleryText(['amy', 'bernadette', 'mallory']);
    await upload(text.slice(0, text.length / 2));
    clock += 30_000;
    expect(await store.identities()).toEqual(['amy', 'bernadette']);
    expect(store.version).toBe(good);
    const corrupt = logs.at(-1)!;
    expect(corrupt).toMatchObject({
      level: 'warn',
      message: 'gallery update refused; keeping the loaded version',
      details: { reason: 'INVALID_GALLERY', problem: 'not-json', loaded_etag: good },
    });
    expect(corrupt.details).not.toHaveProperty('issues');
    // Refused once, not re-parsed and re-logged on every check while it stays there.
    clock += 30_000;
    await store.identities();
    expect(logs.filter((l) => l.level === 'warn')).toHaveLength(1);

    await upload(galleryText(['amy', 'bernadette', 'mallory'], 'another-embedder'));
    expect(await store.refresh()).toBe('refused');
    expect(await who(store, 2)).toBe('unknown');
    expect(logs.at(-1)).toMatchObject({
      level: 'warn',
      details: {
        reason: 'EMBEDDER_MISMATCH',
        gallery_model: 'another-embedder',
        expected_model: 'conformance-embedder',
      },
    });
    // Nothing of the file's content reaches the logs: no name from it, no base64 of an embedding.
    const logged = JSON.stringify(logs);
    expect(logged).not.toContain('mallory');
    expect(logged).not.toMatch(/AACAPw|"embedding"/);

    await upload(galleryText(['amy', 'bernadette', 'howard']));
    expect(await store.refresh()).toBe('updated');
    expect(await who(store, 2)).toBe('howard');
  });

  it('fails at init when the object is missing and no embedder is given, or is not a gallery', async () => {
    await expect(S3GalleryStore.open({ bucket: TEST_BUCKET, key: 'missing.json', client })).rejects.toThrow(
      /no gallery at s3:\/\/facerec-galleries\/missing.json/,
    );
    await upload('not json');
    await expect(open()).rejects.toThrow(/not valid JSON/);
  });

  it('writes with If-Match on the ETag it read, and If-None-Match: * when creating', async () => {
    key = `lambda/new-${randomBytes(4).toString('hex')}.json`;
    const store = await open();
    const created = sent.find((s) => s.command === 'PutObjectCommand' && s.input.Key === key)!;
    expect(created.input).toMatchObject({ Key: key, IfNoneMatch: '*' });
    const etag = store.version;
    await store.add('amy', [{ embedding: axis(0) }]);
    const put = sent.filter((s) => s.command === 'PutObjectCommand').at(-1)!;
    expect(put.input).toMatchObject({ IfMatch: etag, ContentType: 'application/json' });
    const object = await client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: key }));
    expect(FileGallery.parse(await object.Body!.transformToString()).names).toEqual(['amy']);
  });

  it('says which setting is missing when there is no AWS region anywhere', async () => {
    const empty = path.join(tmpdir(), `facerec-no-aws-${randomBytes(4).toString('hex')}`);
    for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE']) vi.stubEnv(name, undefined);
    vi.stubEnv('AWS_CONFIG_FILE', empty);
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', empty);
    try {
      await expect(S3GalleryStore.open({ url: 's3://some-bucket/gallery.json' })).rejects.toThrow(
        /no AWS region for s3:\/\/some-bucket\/gallery\.json: set AWS_REGION/,
      );
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('names the store and what is wrong when S3 cannot be reached, the bucket is missing or there are no credentials', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const nowhere = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
      maxAttempts: 1,
    });
    try {
      const error = await S3GalleryStore.open({ url: 's3://some-bucket/g.json', client: nowhere }).catch(
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'GALLERY_UNREACHABLE' });
      expect((error as Error).message).toBe('cannot reach S3 of s3://some-bucket/g.json (ECONNREFUSED)');
    } finally {
      nowhere.destroy();
    }
    // An endpoint given (FACEREC_S3_ENDPOINT) is named: a typo in it is then plain to see.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'k');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 's');
    try {
      const error = await S3GalleryStore.open({
        url: 's3://some-bucket/g.json',
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
      }).catch((e: unknown) => e);
      expect((error as Error).message).toBe(
        `cannot reach the S3 endpoint http://127.0.0.1:${port} of s3://some-bucket/g.json (ECONNREFUSED)`,
      );
      // A server that answers, but not as S3 does: its refusal, whatever it is, opening against it.
      const openAgainst = async (status: number, type: string, body: string) => {
        const web = createHttpServer((_, res) => res.writeHead(status, { 'content-type': type }).end(body));
        await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
        const refused = await S3GalleryStore.open({
          url: 's3://some-bucket/g.json',
          endpoint: `http://127.0.0.1:${(web.address() as { port: number }).port}`,
          region: 'us-east-1',
          embedder: CONFORMANCE_EMBEDDER,
          create: true,
        }).then(
          () => new Error('opened'),
          (e: unknown) => e as Error,
        );
        await new Promise((resolve) => web.close(resolve));
        return refused;
      };
      // Plain HTTP 404 pages: not "no gallery, create it".
      const other = await openAgainst(404, 'text/html', '<html>no</html>');
      expect(other).toMatchObject({ code: 'GALLERY_S3_ERROR' });
      expect(other.message).toMatch(
        /^s3:\/\/some-bucket\/g\.json: the S3 endpoint http:\/\/127\.0\.0\.1:\d+ answered what is not an S3 answer, or failed \(HTTP 404 /,
      );
      // Another web server answering JSON (here: facerec serve's 401): one line, not the SDK's second one.
      const notS3 = await openAgainst(401, 'application/json', '{"error":"unauthorized"}');
      expect(notS3).toMatchObject({ code: 'GALLERY_S3_ERROR' });
      expect(notS3.message).toMatch(/answered what is not an S3 answer, or failed \(.*XML parse error.*\)$/);
      expect(notS3.message).not.toContain('\n');
    } finally {
      vi.unstubAllEnvs();
    }
    // A bucket that does not exist is not "no gallery there, create it".
    const missing = await S3GalleryStore.open({
      url: 's3://no-such-bucket/g.json',
      client,
      embedder: CONFORMANCE_EMBEDDER,
      create: true,
    }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'GALLERY_BUCKET_MISSING' });
    expect((missing as Error).message).toBe('s3://no-such-bucket/g.json: there is no bucket no-such-bucket');
    const empty = path.join(tmpdir(), `facerec-no-aws-${randomBytes(4).toString('hex')}`);
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'])
      vi.stubEnv(name, undefined);
    vi.stubEnv('AWS_CONFIG_FILE', empty);
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', empty);
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    try {
      await expect(
        S3GalleryStore.open({ url: 's3://some-bucket/g.json', endpoint: s3.endpoint, region: 'us-east-1' }),
      ).rejects.toThrow(
        'no AWS credentials for s3://some-bucket/g.json: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE',
      );
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('gives up on an endpoint that never answers, and on one failing with 5xx, as out of reach (it can pass)', {
    timeout: 45_000,
  }, async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'k');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 's');
    // Accepts connections and never answers: a Lambda init or a search waiting on it would hang.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    const busy = createHttpServer((_, res) =>
      res
        .writeHead(503, { 'content-type': 'application/xml' })
        .end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>'),
    );
    try {
      for (const server of [silent, busy]) {
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      }
      const endpoint = (server: typeof silent | typeof busy) =>
        `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const started = Date.now();
      const hung = await S3GalleryStore.open({
        url: 's3://some-bucket/g.json',
        endpoint: endpoint(silent),
        region: 'us-east-1',
      }).catch((e: unknown) => e);
      const waited = Date.now() - started;
      expect(hung).toMatchObject({ code: 'GALLERY_UNREACHABLE' });
      expect((hung as Error).message).toMatch(
        /^cannot reach the S3 endpoint .* of s3:\/\/some-bucket\/g\.json \(/,
      );
      // Two attempts of 4 s (about 8 s here, within Lambda's 10 s init); before, it waited for as long as the
      // endpoint kept the connection open. The bound leaves room for a loaded machine.
      expect(waited).toBeGreaterThan(7_000);
      expect(waited).toBeLessThan(20_000);
      const refused = await S3GalleryStore.open({
        url: 's3://some-bucket/g.json',
        endpoint: endpoint(busy),
        region: 'us-east-1',
      }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'GALLERY_UNREACHABLE' });
      expect((refused as Error).message).toMatch(/\(HTTP 503 SlowDown\)$/);
    } finally {
      vi.unstubAllEnvs();
      for (const socket of sockets) socket.destroy();
      busy.closeAllConnections();
      for (const server of [silent, busy]) await new Promise((resolve) => server.close(resolve));
    }
  });

  it('says a 403 may be an object that does not exist, for credentials that may not list the bucket', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'k');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 's');
    // What S3 answers a GET of a missing key without s3:ListBucket.
    let code = 'AccessDenied';
    const denying = createHttpServer((_, res) =>
      res
        .writeHead(403, { 'content-type': 'application/xml' })
        .end(`<Error><Code>${code}</Code><Message>refused</Message></Error>`),
    );
    const open = () =>
      S3GalleryStore.open({
        url: 's3://some-bucket/g.json',
        endpoint: `http://127.0.0.1:${(denying.address() as { port: number }).port}`,
        region: 'us-east-1',
      }).then(
        () => new Error('opened'),
        (e: unknown) => e as Error,
      );
    try {
      await new Promise<void>((resolve) => denying.listen(0, '127.0.0.1', resolve));
      const error = await open();
      expect(error).toMatchObject({ code: 'GALLERY_ACCESS_DENIED' });
      expect(error.message).toMatch(
        /refused access \(AccessDenied\) \(or there is no such object, and the credentials may not list the bucket: s3:ListBucket\)$/,
      );
      // A key or a signature refused says nothing of the object: the credentials are named instead.
      for (code of ['InvalidAccessKeyId', 'SignatureDoesNotMatch']) {
        const refused = await open();
        expect(refused).toMatchObject({ code: 'GALLERY_ACCESS_DENIED' });
        expect(refused.message).toMatch(
          new RegExp(
            `refused access \\(${code}\\): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \\(or the profile or role that gives them\\)$`,
          ),
        );
      }
    } finally {
      vi.unstubAllEnvs();
      denying.closeAllConnections();
      await new Promise((resolve) => denying.close(resolve));
    }
  });

  it('refuses to write to a server that ignores conditional writes (stock s3rver), unless told to', async () => {
    const stock = await startLocalS3({ conditionalWrites: false });
    try {
      const client = stock.client();
      const open = (allowUnconditionalWrites?: boolean) =>
        S3GalleryStore.open({
          url: `s3://${TEST_BUCKET}/stock.gallery.json`,
          client,
          embedder: CONFORMANCE_EMBEDDER,
          ...(allowUnconditionalWrites === undefined ? {} : { allowUnconditionalWrites }),
        });
      // Creating it is a write too: refused, nothing stored, and the probe object deleted again.
      const refused = await open().catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'GALLERY_UNCONDITIONAL_WRITES' });
      expect((refused as Error).message).toMatch(
        /^s3:\/\/facerec-galleries\/stock\.gallery\.json: the S3 server ignores conditional writes .*nothing was written/,
      );
      const keys = async () =>
        ((await client.send(new ListObjectsV2Command({ Bucket: TEST_BUCKET }))).Contents ?? []).map(
          (o) => o.Key,
        );
      expect(await keys()).toEqual([]);
      const store = await open(true);
      await store.add('amy', [{ embedding: axis(0), source: 'amy.jpg' }]);
      expect(await keys()).toEqual(['stock.gallery.json']);
      await store.close();
      // A handle that only reads never asks; its first write does.
      const reader = await open();
      expect(await reader.identities()).toEqual(['amy']);
      await expect(reader.add('bernadette', [{ embedding: axis(1), source: 'b.jpg' }])).rejects.toMatchObject(
        {
          code: 'GALLERY_UNCONDITIONAL_WRITES',
        },
      );
      expect(await reader.identities()).toEqual(['amy']);
      await reader.close();
    } finally {
      await stock.stop();
    }
  });

  it('refuses an endpoint with a path, which would prefix every key', async () => {
    await expect(
      S3GalleryStore.open({ url: `s3://${TEST_BUCKET}/g.json`, endpoint: `${s3.endpoint}/${TEST_BUCKET}` }),
    ).rejects.toThrow(/endpoint: give the server without a path, e\.g\. http:\/\/127\.0\.0\.1:9000/);
  });

  it('refuses an endpoint with credentials in it, without repeating them', async () => {
    const error = await S3GalleryStore.open({
      url: `s3://${TEST_BUCKET}/g.json`,
      endpoint: s3.endpoint.replace('://', '://AKIAUSER:S3SECRETPW@'),
    }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/endpoint: give the server without user:password/);
    expect((error as Error).message).not.toMatch(/S3SECRETPW|AKIAUSER/);
  });

  it('parses s3:// URLs', () => {
    expect(parseS3Url('s3://my-bucket/a/b/gallery.json')).toEqual({
      bucket: 'my-bucket',
      key: 'a/b/gallery.json',
    });
    // The scheme's case does not matter (openGalleryStore dispatches S3:// here too).
    expect(parseS3Url('S3://my-bucket/g.json')).toEqual({ bucket: 'my-bucket', key: 'g.json' });
    expect(() => parseS3Url('https://my-bucket/x')).toThrow(/expected s3:\/\/bucket\/key/);
    expect(() => parseS3Url('s3://my-bucket/')).toThrow(/expected s3:\/\/bucket\/key/);
    expect(() => parseS3Url('s3://My_Bucket/x.json')).toThrow(/a bucket name is 3–63 lowercase letters/);
    // A path a server or proxy may resolve into another bucket (s3rver wrote ../victim/g.json to bucket victim),
    // and what reads as a version pin or a fragment: refused, not sent as part of the key.
    for (const url of [
      's3://faces/../victim/g.json',
      's3://faces/./g.json',
      's3://faces//g.json',
      's3://faces/a/',
      's3://faces/a/..',
    ]) {
      expect(() => parseS3Url(url)).toThrow(/has an empty, '\.' or '\.\.' segment/);
    }
    expect(() => parseS3Url('s3://faces/g.json?versionId=1')).toThrow(/holds '\?' or '#'/);
    expect(() => parseS3Url('s3://faces/g.json#v2')).toThrow(/holds '\?' or '#'/);
    expect(() => parseS3Url(`s3://faces/${'k'.repeat(1025)}`)).toThrow(/longer than S3 takes/);
    expect(parseS3Url('s3://faces/..staff.json')).toEqual({ bucket: 'faces', key: '..staff.json' });
  });

  it('refuses such a key given as an option too', async () => {
    await expect(
      S3GalleryStore.open({ bucket: 'faces', key: '../victim/g.json', region: 'eu-west-1' }),
    ).rejects.toThrow(/key: the key has an empty, '\.' or '\.\.' segment/);
  });
});
