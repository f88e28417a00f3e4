import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CheckpointError,
  decodeImage,
  InvalidOptionsError,
  ModelUnavailableError,
  MtcnnDetector,
  NoSuchModelError,
} from '@facerec/framework';
import { describeWithSharedData, readSyntheticReference, sharedPath } from '@facerec/framework/testing';
import {
  createProvider,
  createTfjsProvider,
  TfjsInceptionResnetV1Embedder,
  type TfjsProvider,
} from '@facerec/provider-tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { foreignCheckpointBytes } from '../../framework/src/checkpoint/__fixtures__/pickle-builder.js';
import { writeSyntheticCheckpoint } from './fixtures/synthetic-checkpoint.js';
import { cosine, decodeFace, mirrorStore, quiet } from './helpers.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';

describe('createTfjsProvider options', () => {
  it('rejects unknown keys and bad values with InvalidOptionsError naming the package', () => {
    expect(() => createTfjsProvider({ threads: 2 } as object)).toThrow(InvalidOptionsError);
    expect(() => createTfjsProvider({ threads: 2 } as object)).toThrow(/@facerec\/provider-tfjs/);
    expect(() => createTfjsProvider({ backend: 'webgl' as 'cpu' })).toThrow(
      /backend: unknown backend "webgl"; valid backends: tensorflow, wasm, cpu/,
    );
    expect(() => createTfjsProvider({ logger: 'stderr' as never })).toThrow(/logger/);
    expect(() => createTfjsProvider({ modelStore: {} as never })).toThrow(InvalidOptionsError);
  });

  it('takes the backend from $FACEREC_TFJS_BACKEND when loaded by name (CLI, serve, Lambda), naming a bad one', async () => {
    vi.stubEnv('FACEREC_TFJS_BACKEND', 'cpu');
    try {
      const lines: string[] = [];
      vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });
      const provider = createProvider() as TfjsProvider;
      expect((await provider.backend()).name).toBe('cpu');
      expect(lines.join('')).toContain('facerec tfjs: using backend "cpu"');
      vi.restoreAllMocks();
      // The settings' logger takes the line instead (serve --quiet passes one that drops it).
      const told: string[] = [];
      await (createProvider({ logger: (line) => told.push(line) }) as TfjsProvider).backend();
      expect(told).toEqual(['facerec tfjs: using backend "cpu" (requested with $FACEREC_TFJS_BACKEND)']);
      vi.stubEnv('FACEREC_TFJS_BACKEND', 'webgl');
      expect(() => createProvider()).toThrow(
        'FACEREC_TFJS_BACKEND="webgl" is no backend; valid: tensorflow, wasm, cpu',
      );
    } finally {
      vi.restoreAllMocks();
      vi.unstubAllEnvs();
    }
  });

  it('rejects unknown model ids with NoSuchModelError listing the available ones', async () => {
    const provider = createTfjsProvider({ backend: 'cpu', logger: quiet });
    expect(provider.registry.detectorIds).toEqual(['mtcnn']);
    expect(provider.registry.embedderIds).toEqual(['inception-resnet-v1', 'faceapi-resnet']);
    expect(() => provider.detector('retinaface')).toThrow(NoSuchModelError);
    expect(() => provider.detector('retinaface')).toThrow(/available: mtcnn/);
    const error = await provider.embedder('arcface').catch((e: unknown) => e);
    expect(NoSuchModelError.isInstance(error)).toBe(true);
    expect(String(error)).toContain('available: inception-resnet-v1');
  });

  it('validates detector and embedder options before loading anything', async () => {
    const provider = createTfjsProvider({ backend: 'cpu', logger: quiet });
    expect(() => provider.detector('mtcnn', { minFaceSze: 10 } as object)).toThrow(InvalidOptionsError);
    expect(() => provider.detector('mtcnn', { thresholds: [0.6, 1.5, 0.7] })).toThrow(/thresholds/);
    const error = await provider
      .embedder('inception-resnet-v1', { weights: 'vggface2', batch: 4 } as object)
      .catch((e: unknown) => e);
    expect(InvalidOptionsError.isInstance(error)).toBe(true);
    expect(String(error)).toContain('tfjs inception-resnet-v1');
    await expect(provider.embedder('inception-resnet-v1', { maxBatchSize: 0 })).rejects.toThrow(
      /maxBatchSize/,
    );
  });
});

describeWithSharedData('createTfjsProvider models', ['models/upstream/pnet.pt', 'faces', REFERENCE], () => {
  let work: string;
  let checkpoint: string;
  let provider: TfjsProvider;
  const lines: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'facerec-tfjs-provider-'));
    checkpoint = await writeSyntheticCheckpoint(sharedPath(REFERENCE), path.join(work, 'synthetic.pt'));
    provider = createTfjsProvider({ modelStore: await mirrorStore(), logger: (l) => lines.push(l) });
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('hands out an MtcnnDetector (the shared cascade) and starts the backend once, logging one line', async () => {
    const detector = provider.detector('mtcnn', { minFaceSize: 40 });
    expect(detector).toBeInstanceOf(MtcnnDetector);
    expect(detector.provider).toBe('tfjs');
    expect((detector as MtcnnDetector).options.minFaceSize).toBe(40);
    const faces = await detector.detect(await decodeFace('facenet-pytorch', 'multiface.jpg'));
    expect(faces).toHaveLength(6);
    const again = provider.detector('mtcnn');
    await again.ready();
    const { name } = await provider.backend();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^facerec tfjs: using backend "${name}" \\(.+\\)$`));
    await detector.dispose();
    await again.dispose();
  });

  it('loads a .pt checkpoint by path, with the onnx provider’s model id scheme and the file’s sha256', async () => {
    const embedder = await provider.embedder('inception-resnet-v1', { weights: checkpoint, maxBatchSize: 4 });
    try {
      expect(embedder).toBeInstanceOf(TfjsInceptionResnetV1Embedder);
      expect(embedder.provider).toBe('tfjs');
      expect(embedder.modelId).toBe('inception-resnet-v1/synthetic.pt');
      expect(embedder.weightsSha256).toBe(
        createHash('sha256')
          .update(await readFile(checkpoint))
          .digest('hex'),
      );
      expect(embedder.dimension).toBe(512);
      const reference = await readSyntheticReference(sharedPath(REFERENCE));
      const crop = await decodeImage(
        await readFile(sharedPath('reference', reference.embeddings[3]!.cropPng)),
      );
      const [vector] = await embedder.embed([crop]);
      expect(cosine(vector!, reference.embeddings[3]!.embedding)).toBeGreaterThanOrEqual(0.9999);
    } finally {
      await embedder.dispose();
    }
    expect(lines).toHaveLength(1);
  });

  it('reports missing weights with the framework’s errors', async () => {
    // The offline mirror holds only the MTCNN files: the pretrained embedder weights cannot be pulled.
    const vgg = await provider.embedder('inception-resnet-v1').catch((e: unknown) => e);
    expect(ModelUnavailableError.isInstance(vgg), String(vgg)).toBe(true);
    const notPt = path.join(work, 'not-a-checkpoint.pt');
    await writeFile(notPt, 'hello');
    const bad = await provider.embedder('inception-resnet-v1', { weights: notPt }).catch((e: unknown) => e);
    expect(CheckpointError.isInstance(bad), String(bad)).toBe(true);

    // Another network's checkpoint in the cache under the VGGFace2 name (trusted on first use, its hash recorded):
    // the error says how to get rid of it.
    const cache = await mkdtemp(path.join(tmpdir(), 'facerec-foreign-'));
    await writeFile(path.join(cache, '20180402-114759-vggface2.pt'), foreignCheckpointBytes());
    const foreign = await createTfjsProvider({
      backend: 'cpu',
      modelStore: await mirrorStore(cache),
      logger: quiet,
    })
      .embedder('inception-resnet-v1', { weights: 'vggface2' })
      .catch((e: unknown) => e);
    await rm(cache, { recursive: true, force: true });
    expect(CheckpointError.isInstance(foreign), String(foreign)).toBe(true);
    expect((foreign as Error).message).toMatch(
      /missing weight "conv2d_1a\.conv\.weight".* \(it is in the model cache: if a mirror or a download served the wrong file, delete it and its entry in .*hashes\.json, then pull again\)$/,
    );
  });

  it('frees every tensor on dispose', async () => {
    const before = tf.memory().numTensors;
    const detector = provider.detector('mtcnn');
    await detector.ready();
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    await detector.detect(await decodeFace('face-api.js', 'bbt', 'amy', 'amy1.png'));
    await detector.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
