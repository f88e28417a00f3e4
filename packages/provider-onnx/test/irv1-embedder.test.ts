import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CheckpointError,
  decodeImage,
  type FaceEmbedder,
  HASHES_FILE,
  type InceptionResnetV1Options,
  InvalidOptionsError,
  loadManifest,
  MODELS,
  ModelStore,
  NoSuchModelError,
  type PullProgress,
  type RgbImage,
  readCheckpointFile,
} from '@facerec/framework';
import {
  describeEmbedderConformance,
  describeWithSharedData,
  dot,
  embeddingAgreement,
  readSyntheticReference,
  type SyntheticReference,
  sharedPath,
} from '@facerec/framework/testing';
import { createOnnxProvider, OnnxInceptionResnetV1Embedder } from '@facerec/provider-onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foreignCheckpointBytes } from '../../framework/src/checkpoint/__fixtures__/pickle-builder.js';
import {
  UPSTREAM_FILES,
  writeSyntheticCheckpoint,
  writeUpstreamStandIn,
} from './fixtures/synthetic-checkpoint.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';
const offline = (() => Promise.reject(new Error('tests run offline'))) as typeof fetch;

const sha256 = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

function asOnnx(embedder: FaceEmbedder): OnnxInceptionResnetV1Embedder {
  expect(embedder).toBeInstanceOf(OnnxInceptionResnetV1Embedder);
  return embedder as OnnxInceptionResnetV1Embedder;
}

describeWithSharedData('onnx InceptionResnetV1 embedder', [REFERENCE, 'reference/crops'], () => {
  let work: string;
  /** One cache for the whole file: every graph is built once and later loads hit `<cacheDir>/onnx/`. */
  let cacheDir: string;
  let store: ModelStore;
  let syntheticPt: string;
  let reference: SyntheticReference;
  let crops: RgbImage[];
  /** The synthetic checkpoint's embedder, loaded (and its graph built) once. */
  let synthetic: OnnxInceptionResnetV1Embedder;
  let syntheticVectors: Float32Array[];

  const provider = (modelStore = store) => createOnnxProvider({ intraOpNumThreads: 2, modelStore });

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'facerec-irv1-'));
    cacheDir = path.join(work, 'cache');
    store = new ModelStore({ manifest: await loadManifest(), cacheDir, fetch: offline });
    reference = await readSyntheticReference(sharedPath(REFERENCE));
    syntheticPt = await writeSyntheticCheckpoint(path.join(work, 'synthetic.pt'), reference.keys);
    crops = await Promise.all(
      reference.embeddings.map(async (e) => decodeImage(await readFile(sharedPath('reference', e.cropPng)))),
    );
    synthetic = asOnnx(await provider().embedder('inception-resnet-v1', { weights: syntheticPt }));
    syntheticVectors = await synthetic.embed(crops);
    const { graphMs, sessionMs } = synthetic.loadReport;
    console.log(
      `synthetic checkpoint: graph ${graphMs.toFixed(0)} ms (build ${synthetic.graph.buildMs.toFixed(0)} ms), ` +
        `session ${sessionMs.toFixed(0)} ms`,
    );
  });

  afterAll(async () => {
    await synthetic?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  describeEmbedderConformance({
    name: 'onnx inception-resnet-v1 (synthetic checkpoint)',
    // maxBatchSize 4 with 5 faces: the suite's batches are split into uneven chunks.
    create: () => provider().embedder('inception-resnet-v1', { weights: syntheticPt, maxBatchSize: 4 }),
    faces: () => [0, 10, 20, 40, 60].map((i) => crops[i]!),
  });

  describe('through createOnnxProvider', () => {
    it('matches facenet-pytorch on every reference crop (cosine ≥ 0.9999, centred correlation ≥ 0.999)', async () => {
      const files = (await readdir(sharedPath('reference', 'crops'))).filter((f) => f.endsWith('.png'));
      expect(reference.embeddings.map((e) => path.basename(e.cropPng)).sort()).toEqual(files.sort());

      const refs = reference.embeddings.map((e) => e.embedding);
      const { cosines, minCosine, correlation, minCentredCosine } = embeddingAgreement(
        syntheticVectors,
        refs,
      );
      console.log(
        `onnx inception-resnet-v1 vs facenet-pytorch over ${cosines.length} crops: min cosine ` +
          `${minCosine.toFixed(10)} (1 − cos = ${(1 - minCosine).toExponential(2)}, ` +
          `${reference.embeddings[cosines.indexOf(minCosine)]!.cropPng}), centred correlation ` +
          `${correlation.toFixed(10)} (1 − r = ${(1 - correlation).toExponential(2)}), min per-crop centred ` +
          `cosine ${minCentredCosine.toFixed(8)}`,
      );
      for (const v of syntheticVectors) expect(Math.abs(Math.sqrt(dot(v, v)) - 1)).toBeLessThan(1e-5);
      for (const c of cosines) expect(c).toBeGreaterThanOrEqual(0.9999);
      expect(correlation).toBeGreaterThanOrEqual(0.999);
    });

    it('builds the graph from the checkpoint once, then reads it from the .onnx cache', async () => {
      expect(synthetic.graph.built).toBe(true);
      expect(synthetic.graph.path.startsWith(path.join(cacheDir, 'onnx'))).toBe(true);
      expect(existsSync(synthetic.graph.path)).toBe(true);
      expect(synthetic.weightsSha256).toBe(await sha256(syntheticPt));
      expect(synthetic.modelId).toBe('inception-resnet-v1/synthetic.pt');
      expect(synthetic.dimension).toBe(512);

      // A fresh store, as a new process would have: only the files on disk carry over.
      const fresh = new ModelStore({ manifest: store.manifest, cacheDir, fetch: offline });
      const again = asOnnx(await provider(fresh).embedder('inception-resnet-v1', { weights: syntheticPt }));
      try {
        expect(again.graph).toMatchObject({ built: false, buildMs: 0, path: synthetic.graph.path });
        expect(await again.embed(crops.slice(0, 3))).toEqual(syntheticVectors.slice(0, 3));
      } finally {
        await again.dispose();
      }
    });

    it('splits batches larger than maxBatchSize without changing any result', async () => {
      const faces = crops.slice(0, 11);
      for (const maxBatchSize of [1, 3]) {
        const small = await provider().embedder('inception-resnet-v1', {
          weights: syntheticPt,
          maxBatchSize,
        });
        try {
          expect(asOnnx(small).maxBatchSize).toBe(maxBatchSize);
          const vectors = await small.embed(faces);
          expect(vectors).toHaveLength(faces.length);
          vectors.forEach((v, i) => {
            let maxAbs = 0;
            for (let k = 0; k < v.length; k++)
              maxAbs = Math.max(maxAbs, Math.abs(v[k]! - syntheticVectors[i]![k]!));
            expect(maxAbs, `face ${i}, maxBatchSize ${maxBatchSize}`).toBeLessThanOrEqual(1e-6);
          });
        } finally {
          await small.dispose();
        }
      }
    });
  });

  describe.each([
    ['vggface2', 8631],
    ['casia-webface', 10575],
  ] as const)('the upstream %s checkpoint (stand-in with %i logits classes)', (weights, classes) => {
    let mirrorDir: string;
    let standIn: string;
    const events: PullProgress[] = [];
    const upstreamStore = () =>
      loadManifest().then(
        (manifest) =>
          new ModelStore({
            manifest,
            cacheDir,
            mirrorDir,
            fetch: offline,
            onProgress: (e) => events.push(e),
          }),
      );

    beforeAll(async () => {
      mirrorDir = path.join(work, `mirror-${weights}`);
      await rm(mirrorDir, { recursive: true, force: true });
      await mkdir(mirrorDir, { recursive: true });
      standIn = await writeUpstreamStandIn(mirrorDir, weights, reference.keys);
      // Same key layout as the release file: the embedding keys, then the classifier head.
      const keys = [...(await readCheckpointFile(standIn)).entries()].map(([k, t]) => [k, t.shape]);
      expect(path.basename(standIn)).toBe(UPSTREAM_FILES[weights]);
      expect(keys.slice(-2)).toEqual([
        ['logits.weight', [classes, 512]],
        ['logits.bias', [classes]],
      ]);
      expect(keys.slice(0, -2)).toEqual(reference.keys.map((k) => [k.name, k.shape]));
    });

    afterAll(async () => {
      if (mirrorDir) await rm(mirrorDir, { recursive: true, force: true });
    });

    it('pulls it through the model store, records its hash on first use, converts it and embeds', async () => {
      const expectedSha = await sha256(standIn);
      const embedder = asOnnx(
        await provider(await upstreamStore()).embedder('inception-resnet-v1', { weights }),
      );
      try {
        expect(embedder.modelId).toBe(`inception-resnet-v1/${weights}`);
        expect(embedder.weightsSha256).toBe(expectedSha);
        expect(embedder.graph.built).toBe(true);
        const model = `inception-resnet-v1-${weights}`;
        expect(events).toContainEqual(expect.objectContaining({ type: 'start', model, source: 'mirror' }));
        expect(events).toContainEqual(
          expect.objectContaining({ type: 'hash-recorded', model, sha256: expectedSha }),
        );
        const hashes = JSON.parse(await readFile(path.join(cacheDir, HASHES_FILE), 'utf8'));
        expect(hashes.files[UPSTREAM_FILES[weights]]).toMatchObject({ model, sha256: expectedSha });
        // The logits head is dropped: same embeddings as the checkpoint without it.
        expect(await embedder.embed(crops.slice(0, 4))).toEqual(syntheticVectors.slice(0, 4));
      } finally {
        await embedder.dispose();
      }
    });

    it('loads it from the cache the second time: verified against the recorded hash, graph not rebuilt', async () => {
      events.length = 0;
      const embedder = asOnnx(
        await provider(await upstreamStore()).embedder('inception-resnet-v1', { weights }),
      );
      try {
        expect(embedder.graph.built).toBe(false);
        expect(events).toContainEqual(
          expect.objectContaining({ type: 'done', model: `inception-resnet-v1-${weights}`, source: 'cache' }),
        );
        expect(events.some((e) => e.type === 'hash-recorded')).toBe(false);
        expect(await embedder.embed(crops.slice(4, 6))).toEqual(syntheticVectors.slice(4, 6));
      } finally {
        await embedder.dispose();
      }
    });
  });

  describe('options and errors', () => {
    it("says how to recover when the cache holds another network's checkpoint under the VGGFace2 name", async () => {
      // Trusted on first use (the manifest has no hash for it), so the wrong file's hash is recorded too.
      const cache = await mkdtemp(path.join(tmpdir(), 'facerec-foreign-'));
      try {
        await writeFile(path.join(cache, UPSTREAM_FILES.vggface2), foreignCheckpointBytes());
        const store = new ModelStore({ manifest: await loadManifest(), cacheDir: cache, fetch: offline });
        const error = await provider(store)
          .embedder('inception-resnet-v1', { weights: 'vggface2' })
          .catch((e: unknown) => e);
        expect(CheckpointError.isInstance(error), String(error)).toBe(true);
        expect((error as Error).message).toMatch(
          /missing weight "conv2d_1a\.conv\.weight".* \(it is in the model cache: if a mirror or a download served the wrong file, delete it and its entry in .*hashes\.json, then pull again\)$/,
        );
      } finally {
        await rm(cache, { recursive: true, force: true });
      }
    });

    it('rejects invalid options with InvalidOptionsError', async () => {
      const bad: unknown[] = [
        { maxBatchSize: 0 },
        { maxBatchSize: 2.5 },
        { weights: '' },
        { weights: 'vggface' },
        { weights: path.join(work, 'missing.pt') },
        { weights: work },
        { weights: syntheticPt, batchSize: 4 },
      ];
      for (const options of bad) {
        const error = await provider()
          .embedder('inception-resnet-v1', options as InceptionResnetV1Options)
          .catch((e: unknown) => e);
        expect(InvalidOptionsError.isInstance(error), `${JSON.stringify(options)}: ${error}`).toBe(true);
      }
      const missing = await provider()
        .embedder('inception-resnet-v1', { weights: 'vggface' })
        .catch((e: unknown) => e);
      expect(String(missing)).toMatch(/vggface2, casia-webface/);
      expect(() => createOnnxProvider({ intraOpNumThreads: 0 })).toThrow(InvalidOptionsError);
    });

    it('rejects a checkpoint of another network with CheckpointError naming the file', async () => {
      const pnet = sharedPath('models', 'upstream', 'pnet.pt');
      const error = await provider()
        .embedder('inception-resnet-v1', { weights: pnet })
        .catch((e: unknown) => e);
      expect(CheckpointError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toContain('pnet.pt');
    });

    it('rejects an unknown model id with NoSuchModelError listing the valid ids', async () => {
      const error = await provider()
        .embedder('facenet-512')
        .catch((e: unknown) => e);
      expect(NoSuchModelError.isInstance(error), String(error)).toBe(true);
      expect((error as NoSuchModelError).available).toEqual([...MODELS.embedderIds]);
      expect((error as Error).message).toMatch(
        /No embedder model "facenet-512"; available: .*inception-resnet-v1/,
      );
    });
  });
});
