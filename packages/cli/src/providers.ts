import {
  EMBEDDER_PRECISIONS,
  type FaceEmbedder,
  type FaceProvider,
  type Gallery,
  InvalidOptionsError,
  MODELS,
  type ModelRegistry,
  type ModelStore,
  ModelUnavailableError,
} from '@facerec/framework';
import { createWorkerProvider, loadProvider, type WorkerProvider } from '@facerec/lambda-runtime';
import { Option } from 'commander';
import { holdWhileWorkersRun } from './images.js';
import { workersFlag } from './output.js';

/** What every command reads its models from: the registry (the built-in one, or a test's). */
export interface CliContext {
  readonly registry: ModelRegistry;
}

/** The provider named by `--provider`; an unknown name lists the valid ones (from the registry). */
export function selectProvider(
  context: CliContext,
  name: string,
  settings: { readonly modelStore?: ModelStore; readonly logger?: (line: string) => void } = {},
): Promise<FaceProvider> {
  return loadProvider(name, { registry: context.registry, ...settings });
}

/**
 * The embedder `id` with the `--weights` setting (for embedders that take weights), its options validated by
 * the registry. An unknown id lists the valid ones.
 */
export function loadEmbedder(
  context: CliContext,
  provider: FaceProvider,
  id: string,
  settings: {
    readonly weights?: string | undefined;
    readonly maxBatchSize?: number | undefined;
    readonly precision?: string | undefined;
    /** The command's flag for a checkpoint file, said when named weights cannot be fetched. Default `--weights`. */
    readonly checkpointFlag?: string;
  } = {},
): Promise<FaceEmbedder> {
  const overrides = {
    ...(settings.maxBatchSize === undefined ? {} : { maxBatchSize: settings.maxBatchSize }),
    ...(settings.precision === undefined ? {} : { precision: settings.precision }),
  };
  const { description, options } = context.registry.resolveEmbedder(
    id,
    { weights: settings.weights },
    overrides,
  );
  return provider.embedder(id, options).catch((error: unknown) => {
    // Named weights that cannot be fetched (offline, the default embedder's checkpoint): the ways on without
    // them, for an embedder that takes a checkpoint file instead.
    const takesFile = description.options.safeParse({ weights: './checkpoint.pt' }).success;
    if (
      !ModelUnavailableError.isInstance(error) ||
      settings.weights !== undefined ||
      !takesFile ||
      !description.manifestEntries(options).includes(error.model)
    ) {
      throw error;
    }
    const others = context.registry.embedderIds.filter((other) => other !== id);
    throw new ModelUnavailableError(
      error.model,
      `${error.message} Or go on without it: ${settings.checkpointFlag ?? '--weights'} <file.pt>, a checkpoint of ${id} you have` +
        (others.length ? `; or another embedder, --embedder ${others.join(' or ')}` : '') +
        '.',
      { ...(error.url === undefined ? {} : { url: error.url }), cause: error },
    );
  });
}

/**
 * The embedder a gallery was built with (read from its model id through the registry), loaded and checked
 * compatible with the gallery. `weights` overrides what the model id implies (a gallery built from a local
 * `.pt` file records only its file name); `precision` (`--precision`) picks the int8 graph of the same model.
 * `settings` as {@link loadEmbedder} takes them (its `weights` and `precision`).
 */
export async function loadGalleryEmbedder(
  context: CliContext,
  provider: FaceProvider,
  gallery: Gallery,
  settings: { readonly weights?: string | undefined; readonly precision?: string | undefined } = {},
): Promise<FaceEmbedder> {
  const { description, options } = context.registry.embedderForModelId(gallery.embedder.modelId, {
    weights: settings.weights,
  });
  const embedder = await provider.embedder(description.id, {
    ...options,
    ...(settings.precision === undefined ? {} : { precision: settings.precision }),
  });
  try {
    gallery.assertCompatible(embedder);
  } catch (error) {
    await embedder.dispose();
    throw error;
  }
  return embedder;
}

/** `--provider <name>`: choices and help from the registry. */
export function providerOption(context: CliContext): Option {
  const { registry } = context;
  return new Option(
    '--provider <name>',
    `inference provider: ${registry.providerNames
      .map((name) => `${name} (${registry.provider(name).summary})`)
      .join('; ')}`,
  )
    .choices(registry.providerNames)
    .default(registry.defaults.provider);
}

/** `--embedder <id>`: choices and help from the registry. */
export function embedderOption(context: CliContext, help = 'embedder'): Option {
  const { registry } = context;
  return new Option(
    '--embedder <id>',
    `${help}: ${registry.embedderIds.map((id) => `${id} (${registry.embedder(id).summary})`).join('; ')}`,
  )
    .choices(registry.embedderIds)
    .default(registry.defaults.embedder);
}

/**
 * `--weights <w>`. For a command that names its embedder (`for: 'embedder'`) it picks that embedder's weights;
 * for one that reads the embedder from a gallery (`for: 'gallery'`) it only names the local checkpoint a
 * gallery built from a `.pt` file was made with, which its model id cannot.
 */
export function weightsOption(use: 'embedder' | 'gallery'): Option {
  return new Option(
    '--weights <w>',
    use === 'embedder'
      ? 'weights, for embedders that take them (inception-resnet-v1: vggface2 (default), casia-webface or a .pt path)'
      : 'checkpoint path, when the gallery was built from a local .pt file (its embedder is read from the gallery)',
  );
}

/**
 * `--precision <p>`: `fp32` (the embedder's default) or `int8` (the onnx provider's int8 graph: faceapi-resnet's
 * shipped calibration, or the faces in `FACEREC_CALIBRATION_DIR`). Validated by the embedder's option schema.
 */
export function precisionOption(note?: string): Option {
  return new Option(
    '--precision <p>',
    `embedder precision${note ? ` ${note}` : ''}: fp32 (default) or int8 (onnx: the int8 graph; faceapi-resnet ships its calibration, $FACEREC_CALIBRATION_DIR names your own faces and is needed for inception-resnet-v1 until the model cache has its calibration recorded)`,
  ).choices(EMBEDDER_PRECISIONS);
}

/** `--metric <m>`: the distance between embeddings, `euclidean` (default) or `cosine`. */
export function metricOption(): Option {
  return new Option('--metric <m>', 'distance').choices(['euclidean', 'cosine']).default('euclidean');
}

/**
 * The fewest images for which `--workers auto` starts worker threads. Starting them (each loads its models)
 * takes about half a second; on 2 cores, 2 workers then went through 66 photos 4–19 % faster than the main
 * thread (`detect`, `recognize`), and 8 small photos 0.5 s slower.
 */
const AUTO_WORKERS_FROM = 32;

/**
 * `--workers` when the CLI was given a registry of its own (`main(argv, { registry })`): worker threads load the
 * built-in registry (a registry is code, which a thread cannot be handed), so inference runs on the main thread
 * (0), and a number of workers asked for is refused saying why (the workers failed with "no embedder model" for a
 * model the caller's registry has). Undefined with the built-in registry.
 */
export function workersWithOwnRegistry(
  context: CliContext,
  command: string,
  value: string,
): number | undefined {
  if (context.registry === MODELS) return undefined;
  if (value === 'auto' || value === '0') return 0;
  throw new InvalidOptionsError(
    command,
    `--workers ${value.slice(0, 40)}: worker threads run the built-in model registry only, and this facerec was given a registry of its own; leave --workers out (or give 0): inference then runs on the main thread`,
  );
}

/** `--workers` of the commands that go through a list of images (`detect`, `recognize`). */
export function workersOption(): Option {
  return new Option(
    '--workers <n>',
    'inference worker threads (never more than images): several images at once, the cores shared among them; "auto": one per core, at most 4, for 32 images or more (starting them takes about half a second); 0: on the main thread',
  ).default('auto');
}

/**
 * The provider an image command runs its models on, with what it takes to release it: `--workers` worker
 * threads (`createWorkerProvider`), or the main thread. "auto" starts workers only where they pay: for
 * {@link AUTO_WORKERS_FROM} images or more, with the built-in models (a worker thread cannot be handed another registry). `workers` is
 * also how many images the command can have in flight.
 */
export async function imageCommandProvider(
  context: CliContext,
  command: string,
  opts: { readonly provider: string; readonly workers: string },
  images: number,
): Promise<{ provider: FaceProvider; workers: number; close: () => Promise<void> }> {
  // Never more threads than images: each loads its own models (a 64-thread run on one image took 45 s and
  // 2.4 GB on 2 cores, against 1 s and 0.2 GB).
  const workers = Math.min(
    images,
    workersWithOwnRegistry(context, command, opts.workers) ??
      (opts.workers === 'auto' && images < AUTO_WORKERS_FROM ? 0 : workersFlag(command, opts.workers)),
  );
  if (workers === 0) {
    return { provider: await selectProvider(context, opts.provider), workers, close: async () => {} };
  }
  const provider: WorkerProvider = await createWorkerProvider({ provider: opts.provider, workers });
  const release = holdWhileWorkersRun();
  return {
    provider,
    workers,
    close: async () => {
      try {
        await provider.close();
      } finally {
        release();
      }
    },
  };
}
