import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { legacyCheckpointBytes } from '../checkpoint/__fixtures__/pickle-builder.js';
import { IntegrityError, ModelUnavailableError } from '../errors.js';
import { syntheticStateDict } from '../testing/synthetic-weights.js';
import type { ModelEntry } from './manifest.js';
import { ModelStore, type PullProgress } from './store.js';

// A PyTorch checkpoint (300 KB of weights): a copy no hash vouches for must be one.
const payload = Buffer.from(legacyCheckpointBytes(syntheticStateDict([{ name: 'w', shape: [75_000] }])));
const payloadSha = createHash('sha256').update(payload).digest('hex');

let server: Server;
let base: string;
const hits: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const send = (bytes: Buffer) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
      // Several writes, so that the client sees several chunks.
      for (let i = 0; i < bytes.length; i += 64 * 1024) res.write(bytes.subarray(i, i + 64 * 1024));
      res.end();
    };
    switch (req.url) {
      case '/model.pt':
        return send(payload);
      case '/wrong.pt': {
        const wrong = Buffer.from(payload);
        wrong[123] = wrong[123]! ^ 0xff;
        return send(wrong);
      }
      case '/redirect.pt':
        res.writeHead(302, { location: '/model.pt' });
        return res.end();
      case '/stall.pt':
        res.writeHead(200, { 'content-length': payload.length });
        res.write(payload.subarray(0, 1000));
        return; // never ends
      case '/hang.pt':
        return; // never answers
      default:
        res.writeHead(404, 'Not Found');
        return res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function storeFor(
  route: string,
  sha256: string | null,
  extra: { stallTimeoutMs?: number; connectTimeoutMs?: number } = {},
) {
  const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'facerec-http-'));
  temps.push(cacheDir);
  const events: PullProgress[] = [];
  const model: ModelEntry = {
    name: 'http-model',
    description: 'served by the test',
    file: 'model.pt',
    url: `${base}${route}`,
    sha256,
    size: null,
    license: 'MIT',
    format: 'pytorch-state-dict',
    source: 'url',
  };
  // The real global fetch, against the local server.
  const store = new ModelStore({
    manifest: { version: 1, models: [model] },
    cacheDir,
    onProgress: (e) => events.push(e),
    ...extra,
  });
  return { store, cacheDir, events };
}

const leftovers = (dir: string) =>
  existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.tmp')) : [];

describe('ModelStore HTTP downloads', () => {
  it('downloads, verifies and reports progress', async () => {
    const { store, cacheDir, events } = await storeFor('/model.pt', payloadSha);
    const [pulled] = await store.pull();
    expect(pulled).toMatchObject({
      source: 'url',
      verifiedBy: 'manifest',
      sha256: payloadSha,
      size: payload.length,
    });
    expect(readFileSync(path.join(cacheDir, 'model.pt')).equals(payload)).toBe(true);
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThan(1);
    const bytes = progress.map((e) => e.bytes);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(progress.at(-1)).toMatchObject({ bytes: payload.length, total: payload.length });
    expect(events[0]).toMatchObject({ type: 'start', source: 'url', total: payload.length });
    expect(events.at(-1)).toMatchObject({ type: 'done', sha256: payloadSha });
    expect((await store.status())[0]!.state).toBe('verified');
    expect(leftovers(cacheDir)).toEqual([]);
  });

  it('follows redirects', async () => {
    const { store, cacheDir } = await storeFor('/redirect.pt', payloadSha);
    hits.length = 0;
    expect(await store.resolve('http-model')).toBe(path.join(cacheDir, 'model.pt'));
    expect(hits).toEqual(['/redirect.pt', '/model.pt']);
  });

  it('refuses wrong bytes with an IntegrityError and keeps nothing', async () => {
    const { store, cacheDir } = await storeFor('/wrong.pt', payloadSha);
    const error = await store.resolve('http-model').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).expected).toBe(payloadSha);
    expect((error as Error).message).toContain(`${base}/wrong.pt`);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('records the hash of a download without a manifest hash (trust on first use)', async () => {
    const { store, cacheDir, events } = await storeFor('/model.pt', null);
    const [pulled] = await store.pull();
    expect(pulled!.verifiedBy).toBe('first-use');
    expect(events.some((e) => e.type === 'hash-recorded' && e.sha256 === payloadSha)).toBe(true);
    const hashes = JSON.parse(readFileSync(path.join(cacheDir, 'hashes.json'), 'utf8'));
    expect(hashes.files['model.pt']).toMatchObject({
      model: 'http-model',
      sha256: payloadSha,
      source: `${base}/model.pt`,
    });
    expect((await store.status())[0]).toMatchObject({ state: 'verified', expectedFrom: 'recorded-hash' });
  });

  it('gives up on a body that stalls', async () => {
    const { store, cacheDir } = await storeFor('/stall.pt', payloadSha, { stallTimeoutMs: 300 });
    const started = Date.now();
    const error = await store.resolve('http-model').catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    expect((error as Error).message).toMatch(/download stalled: no data for 300 ms after 1000 bytes/);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('gives up on a server that never answers', async () => {
    const { store, cacheDir } = await storeFor('/hang.pt', payloadSha, { connectTimeoutMs: 300 });
    const started = Date.now();
    await expect(store.resolve('http-model')).rejects.toThrow(/no response within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(leftovers(cacheDir)).toEqual([]);
  });

  it('reports HTTP errors', async () => {
    const { store } = await storeFor('/missing.pt', payloadSha);
    await expect(store.resolve('http-model')).rejects.toThrow(/HTTP 404 Not Found\. To work offline/);
  });
});
