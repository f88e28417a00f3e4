/**
 * One inference worker thread of {@link createWorkerProvider}: it loads a provider with its share of the
 * cores and runs the detectors and embedders the main thread asks for, one job at a time (onnxruntime-node
 * runs a session synchronously on the calling thread, so a job holds this thread until it is done).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type FaceDetector, type FaceEmbedder, MODELS, serializeError } from '@facerec/framework';
import { loadProvider } from '../providers.js';
import type { WorkerJob, WorkerReply, WorkerSetup } from './worker-protocol.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const provider = await loadProvider(setup.provider, {
  registry: MODELS,
  threads: setup.threads,
  ...(setup.announce ? {} : { logger: () => {} }),
});
// One instance per model and options, created on first use and kept for the life of the worker.
const detectors = new Map<string, FaceDetector>();
const embedders = new Map<string, Promise<FaceEmbedder>>();

function detector(job: { model: string; options: Record<string, unknown> }): FaceDetector {
  const key = JSON.stringify([job.model, job.options]);
  let found = detectors.get(key);
  if (!found) {
    found = provider.detector(job.model as never, job.options as never);
    detectors.set(key, found);
  }
  return found;
}

function embedder(job: { model: string; options: Record<string, unknown> }): Promise<FaceEmbedder> {
  const key = JSON.stringify([job.model, job.options]);
  let found = embedders.get(key);
  if (!found) {
    found = provider.embedder(job.model as never, job.options as never);
    embedders.set(key, found);
    found.catch(() => embedders.delete(key));
  }
  return found;
}

async function run(job: WorkerJob): Promise<unknown> {
  switch (job.kind) {
    case 'detector-ready':
      return detector(job).ready();
    case 'warm-up':
      return detector(job).warmUp(job.frame);
    case 'detect':
      return detector(job).detectFaces(job.images, job.detectOptions);
    case 'embedder-load': {
      const e = await embedder(job);
      return {
        provider: e.provider,
        modelId: e.modelId,
        weightsSha256: e.weightsSha256,
        dimension: e.dimension,
        preprocessing: e.preprocessing,
        precision: e.precision,
        maxBatchSize: (e as { maxBatchSize?: number }).maxBatchSize,
      };
    }
    case 'embed':
      return (await embedder(job)).embed(job.faces);
    case 'dispose':
      await Promise.all([
        ...[...detectors.values()].map((d) => d.dispose()),
        ...[...embedders.values()].map(async (e) => (await e).dispose()),
      ]);
      return undefined;
  }
}

port.on('message', (job: WorkerJob) => {
  run(job).then(
    (result) => port.postMessage({ id: job.id, result } satisfies WorkerReply),
    (error: unknown) => port.postMessage({ id: job.id, error: serializeError(error) } satisfies WorkerReply),
  );
});
port.postMessage({ id: -1, result: 'started' } satisfies WorkerReply);
