import {
  type FaceEmbedder,
  InvalidOptionsError,
  type ModelStore,
  type MtcnnDetector,
  type MtcnnOptions,
} from '@facerec/framework';
import type { PipelineProvider } from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';

/** What the CLI needs from a provider (the same shape the pipeline composes). */
export interface CliProvider extends PipelineProvider {
  detector(modelId: 'mtcnn', options?: MtcnnOptions): MtcnnDetector;
  embedder(modelId: string, options?: Record<string, unknown>): Promise<FaceEmbedder>;
}

/** The providers the CLI can run, by `--provider` name. Adding one is one entry here. */
export const CLI_PROVIDERS: Readonly<Record<string, (options: ProviderSettings) => Promise<CliProvider>>> =
  Object.freeze({
    onnx: async (options) => createOnnxProvider(options) as unknown as CliProvider,
    tfjs: async (options) => {
      // Imported on demand: TensorFlow.js is heavy to load and only needed when asked for.
      const { createTfjsProvider } = await import('@facerec/provider-tfjs');
      return createTfjsProvider(options) as unknown as CliProvider;
    },
  });

/** Settings every CLI provider takes. */
export interface ProviderSettings {
  /** Default: `ModelStore.fromEnv` over the bundled manifest. */
  readonly modelStore?: ModelStore;
}

/** The provider named by `--provider`; an unknown name lists the valid ones. */
export async function selectProvider(name: string, settings: ProviderSettings = {}): Promise<CliProvider> {
  const factory = Object.hasOwn(CLI_PROVIDERS, name) ? CLI_PROVIDERS[name] : undefined;
  if (!factory) {
    throw new InvalidOptionsError(
      '--provider',
      `unknown provider "${name}"; valid providers: ${Object.keys(CLI_PROVIDERS).join(', ')}`,
    );
  }
  return factory(settings.modelStore ? { modelStore: settings.modelStore } : {});
}

/** Embedder names the CLI accepts for `--embedder`, and their crop size. */
export const CLI_EMBEDDERS = Object.freeze({ 'faceapi-resnet': 150, 'inception-resnet-v1': 160 } as const);
export type CliEmbedderName = keyof typeof CLI_EMBEDDERS;

/** Loads an embedder by CLI name; `weights` applies to inception-resnet-v1. */
export async function loadEmbedder(
  provider: CliProvider,
  name: string,
  weights?: string,
): Promise<FaceEmbedder> {
  if (!Object.hasOwn(CLI_EMBEDDERS, name)) {
    throw new InvalidOptionsError(
      '--embedder',
      `unknown embedder "${name}"; valid: ${Object.keys(CLI_EMBEDDERS).join(', ')}`,
    );
  }
  return name === 'inception-resnet-v1'
    ? provider.embedder('inception-resnet-v1', { weights: weights ?? 'vggface2' })
    : provider.embedder('faceapi-resnet');
}

/** The CLI embedder name (and weights) a gallery's embedder model id refers to. */
export function embedderForModelId(modelId: string): { name: CliEmbedderName; weights?: string } {
  if (modelId === 'faceapi-resnet') return { name: 'faceapi-resnet' };
  const match = /^inception-resnet-v1\/(.+)$/.exec(modelId);
  if (match) return { name: 'inception-resnet-v1', weights: match[1]! };
  throw new InvalidOptionsError(
    'gallery',
    `the gallery was built with "${modelId}", which this CLI cannot load`,
  );
}
