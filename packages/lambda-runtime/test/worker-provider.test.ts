import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Worker } from 'node:worker_threads';
import {
  DisposedError,
  decodeImage,
  FacerecInputError,
  InvalidInputError,
  InvalidOptionsError,
  MODELS,
  type RgbImage,
} from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { createWorkerProvider, silentLogger, type WorkerProvider } from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';

describeWithSharedData(
  'createWorkerProvider: detectors and embedders in worker threads',
  ['faces/face-api.js', 'models/upstream/pnet.pt'],
  () => {
    const cache = mkdtempSync(path.join(tmpdir(), 'facerec-workers-'));
    let provider: WorkerProvider;
    let frames: RgbImage[];

    beforeAll(async () => {
      // The workers read the models as any process would: the offline mirror into a fresh cache.
      vi.stubEnv('FACEREC_MODELS_MIRROR', sharedPath('models', 'upstream'));
      vi.stubEnv('FACEREC_CACHE_DIR', cache);
      provider = await createWorkerProvider({ provider: 'onnx', workers: 2 });
      frames = [];
      for (const f of ['bbt1.jpg', 'bbt3.jpg', 'bbt/raj/raj1.png', 'bbt/sheldon/sheldon1.png']) {
        frames.push(await decodeImage(await readFile(sharedPath('faces', 'face-api.js', ...f.split('/')))));
      }
    });
    afterAll(async () => {
      await provider?.close();
      vi.unstubAllEnvs();
      await rm(cache, { recursive: true, force: true });
    });

    it('gives exactly the detections, crops and embeddings of the same provider in this thread', async () => {
      expect(provider.threads).toBeGreaterThanOrEqual(1);
      const local = createOnnxProvider({ intraOpNumThreads: provider.threads });
      const [detector, localDetector] = [provider.detector('mtcnn'), local.detector('mtcnn')];
      const [embedder, localEmbedder] = await Promise.all([
        provider.embedder('faceapi-resnet'),
        local.embedder('faceapi-resnet'),
      ]);
      expect(embedder.dimension).toBe(localEmbedder.dimension);
      expect(embedder.preprocessing).toEqual(localEmbedder.preprocessing);
      expect(embedder.weightsSha256).toBe(localEmbedder.weightsSha256);
      expect([embedder.precision, localEmbedder.precision]).toEqual(['fp32', 'fp32']);
      const crop = embedder.preprocessing.crop;
      await detector.warmUp({ width: 320, height: 240 });
      // All frames at once: the jobs spread over both workers and each answer is its own frame's.
      const remote = await Promise.all(frames.map((f) => detector.detectFaces([f], { crop })));
      let faces = 0;
      for (const [i, frame] of frames.entries()) {
        const [expected] = await localDetector.detectFaces([frame], { crop });
        const [got] = remote[i]!;
        expect(got!.faces).toEqual(expected!.faces);
        expect(got!.crops.map((c) => Buffer.from(c.image.data))).toEqual(
          expected!.crops.map((c) => Buffer.from(c.image.data)),
        );
        const images = expected!.crops.map((c) => c.image);
        expect(await embedder.embed(images)).toEqual(await localEmbedder.embed(images));
        faces += expected!.faces.length;
      }
      expect(faces).toBeGreaterThan(5);
      expect(await detector.detectBatch(frames.slice(2))).toEqual(
        await localDetector.detectBatch(frames.slice(2)),
      );
      await Promise.all([localDetector.dispose(), localEmbedder.dispose()]);
    });

    it('builds a model into the cache once: the first worker loads it, then the others', async () => {
      // What each worker was sent and what it answered, in order (the jobs are `{ id, kind, … }`).
      const events: string[] = [];
      const watchedPair = await createWorkerProvider({
        provider: 'onnx',
        workers: 2,
        onWorkerStart: (worker, index) => {
          const post = worker.postMessage.bind(worker);
          const kinds = new Map<number, string>();
          worker.postMessage = (job: { id: number; kind: string }) => {
            kinds.set(job.id, job.kind);
            events.push(`${index} sent ${job.kind}`);
            post(job);
          };
          worker.on('message', (reply: { id: number }) => {
            if (kinds.has(reply.id)) events.push(`${index} done ${kinds.get(reply.id)}`);
          });
        },
      });
      try {
        // The int8 graph is not in this test's fresh cache: loading it builds it.
        const embedder = await watchedPair.embedder('faceapi-resnet', { precision: 'int8' });
        expect(events).toEqual([
          '0 sent embedder-load',
          '0 done embedder-load',
          '1 sent embedder-load',
          '1 done embedder-load',
        ]);
        expect(embedder.precision).toBe('int8');
        // (One int8 file either way: concurrent builders write the same name atomically. The order above is
        // what shows it was built once.)
        const grey = { width: 150, height: 150, data: new Uint8Array(150 * 150 * 3).fill(128) };
        expect((await embedder.embed([grey]))[0]).toHaveLength(128);
      } finally {
        await watchedPair.close();
      }
    });

    it('loads a model again, on another worker, when the one loading it stops mid-load', async () => {
      const events: string[] = [];
      const warnings: string[] = [];
      let killed = false;
      const pair = await createWorkerProvider({
        provider: 'onnx',
        workers: 2,
        logger: {
          debug: () => undefined,
          info: () => undefined,
          warn: (message) => warnings.push(message),
          error: () => undefined,
        },
        onWorkerStart: (worker, index) => {
          const post = worker.postMessage.bind(worker);
          worker.postMessage = (job: { kind: string }) => {
            events.push(`${index} sent ${job.kind}`);
            post(job);
            // The first load is killed as it starts (as the OOM killer would).
            if (job.kind === 'embedder-load' && !killed) {
              killed = true;
              void worker.terminate();
            }
          };
        },
      });
      try {
        const embedder = await pair.embedder('faceapi-resnet');
        const grey = { width: 150, height: 150, data: new Uint8Array(150 * 150 * 3).fill(128) };
        expect((await embedder.embed([grey]))[0]).toHaveLength(128);
        expect(warnings).toContain('an inference worker stopped while loading a model; loading it again');
        expect(events.slice(0, 2)).toEqual(['0 sent embedder-load', '1 sent embedder-load']);
      } finally {
        await pair.close();
      }
    });

    it('rejects bad input with the same facerec error class, across the thread boundary', async () => {
      const detector = provider.detector('mtcnn');
      const error = await detector.detect({ width: 0, height: 3, data: new Uint8Array(0) }).catch((e) => e);
      expect(InvalidInputError.isInstance(error)).toBe(true);
      expect(FacerecInputError.isInstance(error)).toBe(true);
      expect((error as InvalidInputError).code).toBe('INVALID_INPUT');
      await expect(provider.detector('mtcnn', { minFaceSize: -1 }).ready()).rejects.toSatisfy((e) =>
        InvalidOptionsError.isInstance(e),
      );
      // An option that cannot cross to a thread is bad input too, and leaves the workers serving.
      await expect(
        provider.detector('mtcnn', { onProgress: () => undefined } as never).ready(),
      ).rejects.toSatisfy((e) => InvalidOptionsError.isInstance(e));
      // Queued behind two large frames, small ones are detected together; a bad one among them fails alone.
      const bad = { width: 2, height: 2, data: new Uint8Array(5) };
      const expected = await provider.detector('mtcnn').detect(frames[2]!);
      const settled = await Promise.allSettled([
        detector.detect(frames[0]!),
        detector.detect(frames[0]!),
        detector.detect(frames[2]!),
        detector.detect(bad),
        detector.detect(frames[2]!),
      ]);
      expect(settled.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect(InvalidInputError.isInstance((settled[3] as PromiseRejectedResult).reason)).toBe(true);
      expect((settled[2] as PromiseFulfilledResult<unknown>).value).toEqual(expected);
      expect((settled[4] as PromiseFulfilledResult<unknown>).value).toEqual(expected);
      // A disposed handle refuses; the provider and its other handles keep working.
      await detector.dispose();
      await expect(detector.detect(frames[2]!)).rejects.toBeInstanceOf(DisposedError);
      expect((await provider.detector('mtcnn').detect(frames[2]!)).length).toBe(1);
    });

    it('lets a process that never closes it end once its work is done (idle workers hold nothing open)', async () => {
      const child = fileURLToPath(new URL('./worker-unclosed-child.mjs', import.meta.url));
      const started = performance.now();
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [child, sharedPath('faces', 'face-api.js', 'bbt1.jpg')],
        {
          env: {
            ...process.env,
            FACEREC_MODELS_MIRROR: sharedPath('models', 'upstream'),
            FACEREC_CACHE_DIR: cache,
          },
          timeout: 60_000,
        },
      );
      expect(stdout).toMatch(/^faces [1-9]\d*\n$/);
      expect(performance.now() - started).toBeLessThan(60_000);
    }, 90_000);

    it('refuses a bad worker count, another registry, and use after close', async () => {
      await expect(createWorkerProvider({ provider: 'onnx', workers: 0 })).rejects.toBeInstanceOf(
        InvalidOptionsError,
      );
      await expect(createWorkerProvider({ provider: 'onnx', workers: 65 })).rejects.toBeInstanceOf(
        InvalidOptionsError,
      );
      const other = MODELS.with();
      await expect(createWorkerProvider({ provider: 'onnx', workers: 1, registry: other })).rejects.toThrow(
        /built-in model registry/,
      );
      const single = await createWorkerProvider({ provider: 'onnx', workers: 1, threads: 1 });
      const detector = single.detector('mtcnn');
      expect((await detector.detect(frames[3]!)).length).toBe(1);
      await single.close();
      await expect(detector.detect(frames[3]!)).rejects.toSatisfy((e) => DisposedError.isInstance(e));
    });

    /** One worker, its threads as they start (each passed to `onStart` too) and the errors it logs. */
    const watched = async (onStart: (worker: Worker, count: number) => void = () => undefined) => {
      const started: Worker[] = [];
      const logged: string[] = [];
      const single = await createWorkerProvider({
        provider: 'onnx',
        workers: 1,
        logger: { ...silentLogger, error: (message: string) => logged.push(message) },
        onWorkerStart: (worker) => {
          started.push(worker);
          onStart(worker, started.length);
        },
      });
      return { single, started, logged };
    };

    it('replaces a worker that dies: its job fails, the next ones get the same answers', async () => {
      const { single, started, logged } = await watched();
      try {
        const detector = single.detector('mtcnn');
        await detector.warmUp({ width: 320, height: 240 });
        const embedder = await single.embedder('faceapi-resnet');
        const crop = embedder.preprocessing.crop;
        const [expected] = await detector.detectFaces([frames[2]!], { crop });
        const embeddings = await embedder.embed(expected!.crops.map((c) => c.image));
        // The worker stops while it holds a job (as after a fatal error in it).
        const lost = detector.detectFaces([frames[0]!], { crop });
        await started[0]!.terminate();
        await expect(lost).rejects.toMatchObject({ code: 'WORKER_FAILED' });
        expect(logged).toContain('inference worker stopped; starting another');
        // The replacement loads the models again and answers as its predecessor did.
        const [again] = await detector.detectFaces([frames[2]!], { crop });
        expect(started).toHaveLength(2);
        expect(again!.faces).toEqual(expected!.faces);
        expect(await embedder.embed(again!.crops.map((c) => c.image))).toEqual(embeddings);
        expect(logged).toEqual(['inference worker stopped; starting another']);
      } finally {
        await single.close();
      }
    });

    it('gives up a worker that keeps stopping, then fails requests at once instead of queueing them', async () => {
      // Every replacement stops as soon as it runs (as when each one meets the same fatal error).
      const { single, started, logged } = await watched((worker, count) => {
        if (count > 1) void worker.terminate();
      });
      try {
        const detector = single.detector('mtcnn');
        expect((await detector.detect(frames[3]!)).length).toBe(1);
        await started[0]!.terminate();
        await vi.waitFor(() => expect(logged).toContain('could not restart an inference worker'), {
          timeout: 60_000,
          interval: 50,
        });
        // The first stop and four replacements: five stops within a minute.
        expect(started).toHaveLength(5);
        const refused = await detector.detect(frames[3]!).catch((e: unknown) => e);
        expect(refused).toMatchObject({
          code: 'WORKER_FAILED',
          message: expect.stringMatching(/no inference worker left/),
        });
      } finally {
        await single.close();
      }
    }, 90_000);
  },
);
