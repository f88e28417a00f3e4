import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { legacyCheckpointBytes } from '../checkpoint/__fixtures__/pickle-builder.js';
import { IntegrityError, InvalidOptionsError, ModelUnavailableError } from '../errors.js';
import { describeWithSharedData, sharedPath } from '../testing/shared-data.js';
import { syntheticStateDict } from '../testing/synthetic-weights.js';
import { loadManifest, type ModelEntry, type ModelManifest } from './manifest.js';
import { defaultCacheDir, ModelStore, type PullProgress } from './store.js';

const MTCNN = ['mtcnn-pnet', 'mtcnn-rnet', 'mtcnn-onet'];

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-store-'));
  temps.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A fetch that proves a test stays offline. */
const offlineFetch = (async (input: string | URL | Request) => {
  throw new Error(`network used: ${String(input)}`);
}) as typeof fetch;

/** Fails like undici does when DNS resolution fails. */
const dnsFailingFetch = (async (input: string | URL | Request) => {
  const host = new URL(String(input)).hostname;
  const cause = Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), {
    code: 'ENOTFOUND',
    hostname: host,
  });
  throw new TypeError('fetch failed', { cause });
}) as typeof fetch;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function entry(overrides: Partial<ModelEntry> & Pick<ModelEntry, 'name' | 'file'>): ModelEntry {
  return {
    description: 'test model',
    url: `https://models.invalid/${overrides.file}`,
    sha256: null,
    size: null,
    license: 'MIT',
    format: 'pytorch-state-dict',
    source: 'url',
    ...overrides,
  };
}

function leftovers(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.tmp') || n.endsWith('.lock')) : [];
}

let manifest: ModelManifest;
async function realManifest(): Promise<ModelManifest> {
  manifest ??= await loadManifest();
  return manifest;
}

describeWithSharedData('ModelStore with the shared mirror', ['models/upstream/pnet.pt'], () => {
  const mirror = sharedPath('models/upstream');

  it('pulls MTCNN from the mirror without touching the network', async () => {
    const cacheDir = await tempDir();
    const events: PullProgress[] = [];
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir,
      mirrorDir: mirror,
      fetch: offlineFetch,
      onProgress: (e) => events.push(e),
    });
    const pulled = await store.pull(MTCNN);
    expect(pulled.map((p) => [p.name, p.source, p.verifiedBy])).toEqual(
      MTCNN.map((n) => [n, 'mirror', 'manifest']),
    );
    for (const p of pulled) {
      expect(p.path).toBe(path.join(cacheDir, p.file));
      expect(sha256(readFileSync(p.path))).toBe(store.entry(p.name).sha256);
    }
    const status = await store.status();
    expect(status.filter((s) => MTCNN.includes(s.name)).map((s) => s.state)).toEqual([
      'verified',
      'verified',
      'verified',
    ]);
    expect(status.filter((s) => !MTCNN.includes(s.name)).every((s) => s.state === 'missing')).toBe(true);
    expect(events.filter((e) => e.type === 'done')).toHaveLength(3);
    expect(leftovers(cacheDir)).toEqual([]);

    // Already cached: served from the cache, by path; a pull killed earlier left temporaries, which go once
    // stale (an hour untouched), though this file is not fetched again.
    const stale = path.join(cacheDir, 'pnet.pt.4242.0123456789ab.tmp');
    const fresh = path.join(cacheDir, 'pnet.pt.4243.0123456789ab.tmp');
    writeFileSync(stale, 'partial');
    writeFileSync(fresh, 'partial');
    utimesSync(stale, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
    const again = await store.pull(['mtcnn-pnet']);
    expect(again[0]!.source).toBe('cache');
    expect([existsSync(stale), existsSync(fresh)]).toEqual([false, true]);
    rmSync(fresh);
    expect(await store.resolve('mtcnn-onet')).toBe(path.join(cacheDir, 'onet.pt'));
  });

  it('rejects a corrupted mirror file and leaves nothing in the cache', async () => {
    const cacheDir = await tempDir();
    const badMirror = await tempDir();
    const bytes = readFileSync(path.join(mirror, 'pnet.pt'));
    bytes[1000] = bytes[1000]! ^ 0xff;
    writeFileSync(path.join(badMirror, 'pnet.pt'), bytes);
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir,
      mirrorDir: badMirror,
      fetch: offlineFetch,
    });
    const error = await store.pull(['mtcnn-pnet']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    const integrity = error as IntegrityError;
    expect(integrity.model).toBe('mtcnn-pnet');
    expect(integrity.expected).toBe(store.entry('mtcnn-pnet').sha256);
    expect(integrity.actual).toBe(sha256(bytes));
    expect(integrity.message).toContain(path.join(badMirror, 'pnet.pt'));
    expect(existsSync(path.join(cacheDir, 'pnet.pt'))).toBe(false);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  it('reports a corrupt cached file and replaces it on pull', async () => {
    const cacheDir = await tempDir();
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir,
      mirrorDir: mirror,
      fetch: offlineFetch,
    });
    const bytes = readFileSync(path.join(mirror, 'pnet.pt'));
    bytes[0] = bytes[0]! ^ 1;
    writeFileSync(path.join(cacheDir, 'pnet.pt'), bytes);
    expect((await store.status()).find((s) => s.name === 'mtcnn-pnet')!.state).toBe('corrupt');
    expect((await store.status({ verify: false })).find((s) => s.name === 'mtcnn-pnet')!.state).toBe(
      'cached',
    );
    const events: PullProgress[] = [];
    const repairing = new ModelStore({
      manifest: await realManifest(),
      cacheDir,
      mirrorDir: mirror,
      fetch: offlineFetch,
      onProgress: (e) => events.push(e),
    });
    const [pulled] = await repairing.pull(['mtcnn-pnet']);
    expect(pulled!.source).toBe('mirror');
    // Said, not silent: a cache that keeps going bad should be noticed.
    expect(events.find((e) => e.type === 'start')).toMatchObject({ model: 'mtcnn-pnet', replacing: true });
    expect((await store.status()).find((s) => s.name === 'mtcnn-pnet')!.state).toBe('verified');
  });

  it('says what is wrong with a cache it cannot use: a folder where a file belongs, a file as the cache', async () => {
    const cacheDir = await tempDir();
    const options = { manifest: await realManifest(), mirrorDir: mirror, fetch: offlineFetch };
    mkdirSync(path.join(cacheDir, 'pnet.pt'));
    const store = new ModelStore({ ...options, cacheDir });
    expect((await store.status()).find((s) => s.name === 'mtcnn-pnet')!.state).toBe('corrupt');
    const folder = await store.pull(['mtcnn-pnet']).catch((e: unknown) => e);
    expect(ModelUnavailableError.isInstance(folder)).toBe(true);
    expect((folder as Error).message).toMatch(
      new RegExp(
        `^a folder is where a file of the model cache belongs \\(${path.join(cacheDir, 'pnet.pt')}\\): remove it$`,
      ),
    );
    const file = path.join(cacheDir, 'not-a-folder');
    writeFileSync(file, '');
    for (const attempt of [
      () => new ModelStore({ ...options, cacheDir: file }).status(),
      () => new ModelStore({ ...options, cacheDir: file }).pull(['mtcnn-pnet']),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(ModelUnavailableError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain(`the model cache ${file} is not a folder`);
    }
  });

  it('ends with one good file when two stores pull the same model at once', async () => {
    const cacheDir = await tempDir();
    const options = { manifest: await realManifest(), cacheDir, mirrorDir: mirror, fetch: offlineFetch };
    const stores = [new ModelStore(options), new ModelStore(options), new ModelStore(options)];
    const results = await Promise.all(stores.map((s) => s.pull(['mtcnn-onet'])));
    expect(results.flat().every((p) => p.path === path.join(cacheDir, 'onet.pt'))).toBe(true);
    expect(readdirSync(cacheDir)).toEqual(['onet.pt']);
    expect((await stores[0]!.status()).find((s) => s.name === 'mtcnn-onet')!.state).toBe('verified');
  });
});

describe('ModelStore offline failures', () => {
  it('fails fast with a helpful ModelUnavailableError when DNS fails and there is no mirror', async () => {
    const cacheDir = await tempDir();
    const store = new ModelStore({ manifest: await realManifest(), cacheDir, fetch: dnsFailingFetch });
    const started = Date.now();
    const error = await store.resolve('mtcnn-pnet').catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    const unavailable = error as ModelUnavailableError;
    expect(unavailable.model).toBe('mtcnn-pnet');
    expect(unavailable.url).toBe(store.entry('mtcnn-pnet').url);
    expect(unavailable.message).toContain('"mtcnn-pnet"');
    expect(unavailable.message).toContain(store.entry('mtcnn-pnet').url);
    expect(unavailable.message).toContain('getaddrinfo ENOTFOUND raw.githubusercontent.com');
    expect(unavailable.message).toContain('put pnet.pt in a folder and pass it as mirrorDir');
    expect(unavailable.message).toContain(path.join(cacheDir, 'pnet.pt'));
    expect(leftovers(cacheDir)).toEqual([]);
    // A damaged copy in the cache is said as such (not "place it in the cache", where it already is).
    writeFileSync(path.join(cacheDir, 'pnet.pt'), 'damaged');
    await expect(store.resolve('mtcnn-pnet')).rejects.toThrow(
      `; the copy in the cache, ${path.join(cacheDir, 'pnet.pt')}, is damaged (its sha256 is not the expected one): replace it.`,
    );
  });

  it('says the file is not in the mirror when a mirror is set', async () => {
    const mirror = await tempDir();
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir: await tempDir(),
      mirrorDir: mirror,
      fetch: dnsFailingFetch,
    });
    // Where to put it: the mirror that is set (not "set FACEREC_MODELS_MIRROR", which it is), named as it was
    // set: the constructor's option, or the variable that fromEnv read.
    await expect(store.resolve('mtcnn-rnet')).rejects.toThrow(
      `To work offline, put rnet.pt in the mirror folder ${mirror} (mirrorDir; it is not there)`,
    );
    const fromEnv = ModelStore.fromEnv(
      await realManifest(),
      { cacheDir: await tempDir(), fetch: dnsFailingFetch },
      { FACEREC_MODELS_MIRROR: mirror },
    );
    await expect(fromEnv.resolve('mtcnn-rnet')).rejects.toThrow(
      `To work offline, put rnet.pt in the mirror folder ${mirror} (FACEREC_MODELS_MIRROR; it is not there)`,
    );
    // No mirror: how to set one, as this store reads it (the variable only through fromEnv).
    const noMirror = { cacheDir: await tempDir(), fetch: dnsFailingFetch };
    await expect(
      new ModelStore({ manifest: await realManifest(), ...noMirror }).resolve('mtcnn-rnet'),
    ).rejects.toThrow('put rnet.pt in a folder and pass it as mirrorDir (or place it in the cache');
    await expect(
      ModelStore.fromEnv(await realManifest(), noMirror, {}).resolve('mtcnn-rnet'),
    ).rejects.toThrow(
      'put rnet.pt in a folder and set FACEREC_MODELS_MIRROR=<folder> (or place it in the cache',
    );
    // A mirror path that is no folder (relative to another working directory, say) is named as such.
    const nowhere = path.join(await tempDir(), 'no-such-mirror');
    const lost = new ModelStore({
      manifest: await realManifest(),
      cacheDir: await tempDir(),
      mirrorDir: nowhere,
      fetch: dnsFailingFetch,
    });
    await expect(lost.resolve('mtcnn-rnet')).rejects.toThrow(
      `(the mirror ${nowhere} is not a folder: it does not exist)`,
    );
  });

  it('times out a fetch that never answers, even one that ignores its abort signal', async () => {
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir: await tempDir(),
      connectTimeoutMs: 200,
      fetch: (() => new Promise<Response>(() => {})) as typeof fetch,
    });
    const started = Date.now();
    await expect(store.resolve('mtcnn-pnet')).rejects.toThrow(
      /no response within 200 ms.*pass it as mirrorDir/s,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('fails within 10 s with the real fetch when the upstream URL is unreachable', {
    timeout: 30_000,
  }, async () => {
    const cacheDir = await tempDir();
    const store = ModelStore.fromEnv(await realManifest(), { cacheDir }, {});
    const started = Date.now();
    try {
      const file = await store.resolve('mtcnn-pnet');
      // The machine happened to be online: fine, as long as the download verified.
      expect(file).toBe(path.join(cacheDir, 'pnet.pt'));
    } catch (error) {
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(error).toBeInstanceOf(ModelUnavailableError);
      expect((error as Error).message).toMatch(
        /^Cannot download model "mtcnn-pnet" from https:\/\/raw\.githubusercontent\.com\/.*FACEREC_MODELS_MIRROR=/s,
      );
      expect(leftovers(cacheDir)).toEqual([]);
    }
  });

  it('pulls every model, then reports all failures together', async () => {
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir: await tempDir(),
      fetch: dnsFailingFetch,
    });
    const error = await store
      .pull(['mtcnn-pnet', 'faceapi-face-recognition-weights', 'mtcnn-rnet'])
      .catch((e) => e);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    expect((error as ModelUnavailableError).model).toBe('mtcnn-pnet, mtcnn-rnet');
    expect((error as Error).message).toMatch(/Could not get 2 of 3 models/);
    expect((error as Error).cause).toBeInstanceOf(AggregateError);
    expect((await store.status()).find((s) => s.name === 'faceapi-face-recognition-weights')!.state).toBe(
      'verified',
    );
  });
});

describe('ModelStore.pullSettled', () => {
  it('returns what was pulled beside what failed, and the error pull throws', async () => {
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir: await tempDir(),
      fetch: dnsFailingFetch,
    });
    const outcome = await store.pullSettled(['mtcnn-pnet', 'faceapi-face-recognition-weights']);
    expect(outcome.pulled.map((m) => [m.name, m.source])).toEqual([
      ['faceapi-face-recognition-weights', 'npm'],
    ]);
    expect(outcome.failures.map((f) => f.name)).toEqual(['mtcnn-pnet']);
    expect(outcome.failures[0]!.error).toBeInstanceOf(ModelUnavailableError);
    expect(outcome.error).toBe(outcome.failures[0]!.error);
    expect((outcome.error as Error).message).toMatch(/getaddrinfo ENOTFOUND/);

    const none = await store.pullSettled(['faceapi-face-recognition-weights']);
    expect(none).toMatchObject({ failures: [], error: undefined });
    expect(none.pulled[0]!.source).toBe('cache');
  });
});

describe('ModelStore npm-sourced models', () => {
  it('copies the face-api weights and their manifest from node_modules, side by side', async () => {
    const cacheDir = await tempDir();
    const store = new ModelStore({ manifest: await realManifest(), cacheDir, fetch: offlineFetch });
    const pulled = await store.pull([
      'faceapi-face-recognition-weights',
      'faceapi-face-recognition-manifest',
    ]);
    expect(pulled.map((p) => [p.source, p.verifiedBy])).toEqual([
      ['npm', 'manifest'],
      ['npm', 'manifest'],
    ]);
    const weightsManifest = JSON.parse(readFileSync(pulled[1]!.path, 'utf8')) as { paths: string[] }[];
    for (const shard of weightsManifest.flatMap((g) => g.paths)) {
      expect(existsSync(path.join(cacheDir, shard))).toBe(true);
    }
  });

  it('says, in the start event, that a mirror set to no folder was passed over', async () => {
    const nowhere = path.join(await tempDir(), 'no-such-mirror');
    const events: PullProgress[] = [];
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir: await tempDir(),
      mirrorDir: nowhere,
      fetch: offlineFetch,
      onProgress: (event) => events.push(event),
    });
    await store.pull(['faceapi-face-recognition-manifest']);
    expect(events.find((e) => e.type === 'start')).toMatchObject({
      source: 'npm',
      mirrorProblem: `the mirror ${nowhere} is not a folder: it does not exist`,
    });
  });

  it('falls back to the URL, and says how to install, when the package is missing', async () => {
    const store = new ModelStore({
      manifest: {
        version: 1,
        models: [
          entry({
            name: 'ghost',
            file: 'ghost.bin',
            source: { npm: '@facerec/no-such-package', path: 'ghost.bin' },
          }),
        ],
      },
      cacheDir: await tempDir(),
      fetch: dnsFailingFetch,
    });
    await expect(store.resolve('ghost')).rejects.toThrow(/install the npm package @facerec\/no-such-package/);
  });
});

describe('ModelStore trust on first use', () => {
  it('records the hash of the first copy and verifies later copies against it', async () => {
    const cacheDir = await tempDir();
    const mirrorDir = await tempDir();
    const bytes = checkpoint(1200);
    writeFileSync(path.join(mirrorDir, 'big.pt'), bytes);
    const events: PullProgress[] = [];
    const options = {
      manifest: { version: 1 as const, models: [entry({ name: 'big', file: 'big.pt' })] },
      cacheDir,
      mirrorDir,
      fetch: offlineFetch,
      onProgress: (e: PullProgress) => events.push(e),
    };
    const store = new ModelStore(options);
    expect((await store.status())[0]!.state).toBe('missing');

    const [first] = await store.pull();
    expect(first!.verifiedBy).toBe('first-use');
    // Said as recorded, not verified, in the progress too.
    expect(events.find((e) => e.type === 'done')).toMatchObject({ verifiedBy: 'first-use' });
    const recorded = events.find((e) => e.type === 'hash-recorded');
    expect(recorded).toMatchObject({ model: 'big', sha256: sha256(bytes) });
    expect(recorded && 'message' in recorded && recorded.message).toMatch(
      /trusted on first use.*hashes\.json/s,
    );
    const hashes = JSON.parse(readFileSync(path.join(cacheDir, 'hashes.json'), 'utf8'));
    expect(hashes.files['big.pt'].sha256).toBe(sha256(bytes));
    expect((await store.status())[0]).toMatchObject({ state: 'verified', expectedFrom: 'recorded-hash' });

    // A later copy that differs is refused, and nothing is left behind.
    await rm(path.join(cacheDir, 'big.pt'));
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff; // a weight's byte: still a checkpoint
    writeFileSync(path.join(mirrorDir, 'big.pt'), bytes);
    const fresh = new ModelStore(options);
    const mismatch = await fresh.pull().catch((e: unknown) => e);
    expect(mismatch).toBeInstanceOf(IntegrityError);
    // Where the recorded hash came from, and how to drop it if that first copy was the wrong one.
    expect((mismatch as Error).message).toMatch(
      new RegExp(
        `\\(recorded in .*hashes\\.json from mirror .*big\\.pt, ${bytes.length} bytes, \\d{4}-.*; if that first copy was wrong, delete "big\\.pt" from that file and pull again\\)`,
      ),
    );
    expect(readdirSync(cacheDir)).toEqual(['hashes.json']);

    // A tampered cached file is reported corrupt.
    writeFileSync(path.join(cacheDir, 'big.pt'), bytes);
    expect((await fresh.status())[0]!.state).toBe('corrupt');
  });

  it('a damaged hash record blocks only the models trusted on first use, not those the manifest hashes', async () => {
    const cacheDir = await tempDir();
    const mirrorDir = await tempDir();
    writeFileSync(path.join(mirrorDir, 'known.pt'), 'known weights');
    writeFileSync(path.join(mirrorDir, 'big.pt'), 'first-use weights');
    writeFileSync(path.join(cacheDir, 'hashes.json'), '{oops');
    const store = new ModelStore({
      manifest: {
        version: 1,
        models: [
          entry({ name: 'known', file: 'known.pt', sha256: sha256(Buffer.from('known weights')) }),
          entry({ name: 'big', file: 'big.pt' }),
        ],
      },
      cacheDir,
      mirrorDir,
      fetch: offlineFetch,
    });
    expect((await store.pull(['known']))[0]!.verifiedBy).toBe('manifest');
    await expect(store.pull(['big'])).rejects.toThrow(
      `${path.join(cacheDir, 'hashes.json')} is not a valid hash record`,
    );
    // `models list` still lists every model (the first-use one unverified), warning of the record.
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const status = await store.status();
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    expect(status.map((s) => [s.name, s.state])).toEqual([
      ['known', 'verified'],
      ['big', 'missing'],
    ]);
    expect(warnings.map((w) => (w as { code?: string }).code)).toEqual(['FACEREC_HASH_RECORD_INVALID']);
  });

  it('trusts a file placed in the cache by hand on first resolve', async () => {
    const cacheDir = await tempDir();
    writeFileSync(path.join(cacheDir, 'hand.pt'), checkpoint(10));
    const store = new ModelStore({
      manifest: { version: 1, models: [entry({ name: 'hand', file: 'hand.pt' })] },
      cacheDir,
      fetch: offlineFetch,
      onProgress: () => {},
    });
    expect((await store.status())[0]!.state).toBe('cached');
    expect(await store.resolve('hand')).toBe(path.join(cacheDir, 'hand.pt'));
    expect((await store.status())[0]!.state).toBe('verified');
  });

  it("takes over the hash record's lock left by a process that died, once it is 10 s old", async () => {
    const cacheDir = await tempDir();
    writeFileSync(path.join(cacheDir, 'hand.pt'), checkpoint(10));
    // What a pull killed while it recorded a hash left 8 s ago: the lock, not refreshed since (a live holder
    // refreshes it every 5 s). It used to be waited for 10 s, then refused, for 30 s after the kill.
    const lock = path.join(cacheDir, 'hashes.json.lock');
    mkdirSync(lock);
    const past = new Date(Date.now() - 8_000);
    utimesSync(lock, past, past);
    const store = new ModelStore({
      manifest: { version: 1, models: [entry({ name: 'hand', file: 'hand.pt' })] },
      cacheDir,
      fetch: offlineFetch,
      onProgress: () => {},
    });
    const started = Date.now();
    expect(await store.resolve('hand')).toBe(path.join(cacheDir, 'hand.pt'));
    expect(Date.now() - started).toBeLessThan(6_000);
    expect((await store.status())[0]!.state).toBe('verified');
    expect(leftovers(cacheDir)).toEqual([]);
  });

  it('refuses a first copy that is no file of its format (an HTML page, other bytes) before recording its hash', async () => {
    const cacheDir = await tempDir();
    const mirrorDir = await tempDir();
    const events: PullProgress[] = [];
    const store = new ModelStore({
      manifest: {
        version: 1,
        models: [
          entry({ name: 'big', file: 'big.pt' }),
          entry({ name: 'meta', file: 'meta.json', format: 'tfjs-weights-manifest' }),
        ],
      },
      cacheDir,
      mirrorDir,
      fetch: offlineFetch,
      onProgress: (e) => events.push(e),
    });
    // A proxy's block page served as the model, then bytes of no checkpoint, then JSON that is not JSON.
    writeFileSync(path.join(mirrorDir, 'big.pt'), '\n<!DOCTYPE html><html><body>Blocked</body></html>');
    await expect(store.pull(['big'])).rejects.toThrow(
      /the copy of big\.pt from mirror .*big\.pt is not a pytorch-state-dict file: it is an HTML or XML page .*nothing was recorded or kept; get the file from its source \(https:\/\/models\.invalid\/big\.pt\)/,
    );
    writeFileSync(path.join(mirrorDir, 'big.pt'), 'GIF89a, not weights');
    await expect(store.pull(['big'])).rejects.toThrow(
      /not a PyTorch checkpoint: unrecognised leading bytes 47 49 46/,
    );
    // A checkpoint cut short (a download that stopped), or bytes that only start like one: read whole, refused.
    writeFileSync(path.join(mirrorDir, 'big.pt'), checkpoint(1200).subarray(0, 3000));
    await expect(store.pull(['big'])).rejects.toThrow(
      /is not a pytorch-state-dict file: .*nothing was recorded/,
    );
    writeFileSync(path.join(mirrorDir, 'big.pt'), 'PK\x03\x04garbage', 'latin1');
    await expect(store.pull(['big'])).rejects.toThrow(
      /is not a pytorch-state-dict file: .*nothing was recorded/,
    );
    writeFileSync(path.join(mirrorDir, 'meta.json'), 'Not Found');
    await expect(store.pull(['meta'])).rejects.toThrow(/is not a tfjs-weights-manifest file: it is not JSON/);
    expect(events.some((e) => e.type === 'hash-recorded')).toBe(false);
    expect(readdirSync(cacheDir)).toEqual([]);
    // The same page placed in the cache by hand: not trusted either, and named.
    writeFileSync(path.join(cacheDir, 'big.pt'), '<html>sign in</html>');
    await expect(store.resolve('big')).rejects.toThrow(
      /is not a pytorch-state-dict file: .*: delete .*big\.pt; get/,
    );
    expect(readdirSync(cacheDir)).toEqual(['big.pt']);
  });
});

describe('ModelStore options', () => {
  it('names the valid models for an unknown one', async () => {
    const store = new ModelStore({ manifest: await realManifest(), cacheDir: await tempDir() });
    expect(() => store.entry('nope')).toThrow(InvalidOptionsError);
    expect(() => store.entry('nope')).toThrow(/unknown model "nope"; known models: mtcnn-pnet, mtcnn-rnet/);
    await expect(store.pull(['mtcnn-pnet', 'nope'])).rejects.toThrow(InvalidOptionsError);
  });

  it('rejects an invalid manifest or timeout', async () => {
    const manifest = await realManifest();
    expect(
      () => new ModelStore({ manifest: { version: 1, models: [{}] } as unknown as ModelManifest }),
    ).toThrow(InvalidOptionsError);
    expect(() => new ModelStore({ manifest, connectTimeoutMs: -1 })).toThrow(/connectTimeoutMs/);
  });

  it('picks the cache directory from the environment and platform', () => {
    expect(defaultCacheDir({ FACEREC_CACHE_DIR: '/x/cache', XDG_CACHE_HOME: '/xdg' }, 'linux')).toBe(
      '/x/cache',
    );
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/xdg', HOME: '/home/u' }, 'linux')).toBe('/xdg/facerec');
    expect(defaultCacheDir({ HOME: '/home/u' }, 'linux')).toBe('/home/u/.cache/facerec');
    expect(defaultCacheDir({ HOME: '/Users/u' }, 'darwin')).toBe('/Users/u/Library/Caches/facerec');
    expect(defaultCacheDir({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32')).toBe(
      'C:\\Users\\u\\AppData\\Local\\facerec\\Cache',
    );
    expect(defaultCacheDir({ HOME: '/home/u', AWS_LAMBDA_FUNCTION_NAME: 'f' }, 'linux')).toBe('/tmp/facerec');
  });

  it('refuses a FACEREC_CACHE_DIR with spaces around it, naming the variable', () => {
    for (const dir of [' /x/cache', '/x/cache ', '  ']) {
      expect(() => defaultCacheDir({ FACEREC_CACHE_DIR: dir }, 'linux')).toThrow(
        'FACEREC_CACHE_DIR: has spaces at the start or end',
      );
    }
  });

  it('reads the cache and mirror directories in fromEnv, with overrides winning', async () => {
    const manifest = await realManifest();
    const env = { FACEREC_CACHE_DIR: '/c', FACEREC_MODELS_MIRROR: '/m' };
    const store = ModelStore.fromEnv(manifest, {}, env);
    expect([store.cacheDir, store.mirrorDir]).toEqual(['/c', '/m']);
    const overridden = ModelStore.fromEnv(manifest, { cacheDir: '/o', mirrorDir: '/n' }, env);
    expect([overridden.cacheDir, overridden.mirrorDir]).toEqual(['/o', '/n']);
    expect(ModelStore.fromEnv(manifest, {}, {}).mirrorDir).toBeUndefined();
    // A URL is no folder (it was read as a relative folder "http:").
    expect(() => ModelStore.fromEnv(manifest, {}, { FACEREC_MODELS_MIRROR: 'http://127.0.0.1:9' })).toThrow(
      '$FACEREC_MODELS_MIRROR is a URL (http://127.0.0.1:9); it must be a folder holding the upstream files',
    );
    expect(() => ModelStore.fromEnv(manifest, { mirrorDir: 'https://example.com/m' }, {})).toThrow(
      'mirrorDir is a URL (https://example.com/m); it must be a folder',
    );
  });
});

/** A PyTorch checkpoint (legacy format) of one tensor of `values` float32 weights. */
function checkpoint(values: number): Uint8Array {
  return legacyCheckpointBytes(syntheticStateDict([{ name: 'w', shape: [values] }]));
}

describeWithSharedData('ModelStore: a cache that cannot be written', ['models/upstream/pnet.pt'], () => {
  it('says a cache that fails every model once, naming the models', async () => {
    const file = path.join(await tempDir(), 'a-file');
    writeFileSync(file, 'not a folder');
    const mirrorDir = sharedPath('models', 'upstream');
    const store = new ModelStore({
      manifest: await realManifest(),
      cacheDir: path.join(file, 'cache'),
      mirrorDir,
    });
    const error = await store.pull(['mtcnn-pnet', 'mtcnn-rnet', 'mtcnn-onet']).catch((e) => e);
    expect(error).toBeInstanceOf(ModelUnavailableError);
    const lines = (error as Error).message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('Could not get 3 of 3 models:');
    expect(lines[1]).toMatch(
      /^- the model cache .* is not a folder; .* \(mtcnn-pnet, mtcnn-rnet, mtcnn-onet\)$/,
    );
    if (existsSync('/proc/self')) {
      // A folder that cannot be made (mkdir's ENOENT) is the cache's failure too, not a bare system error.
      const proc = new ModelStore({
        manifest: await realManifest(),
        cacheDir: '/proc/facerec-cache',
        mirrorDir,
      });
      await expect(proc.pull(['mtcnn-pnet'])).rejects.toThrow(
        /^the model cache \/proc\/facerec-cache cannot be created \(ENOENT\); the cache is \$FACEREC_CACHE_DIR/,
      );
    }
  });
});
