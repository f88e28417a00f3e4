import { loadManifest, ModelStore, readCheckpointFile } from '@facerec/framework';
import {
  INCEPTION_RESNET_V1_WEIGHTS,
  type InceptionResnetV1Weights,
  loadInceptionResnetV1Graph,
} from '@facerec/provider-onnx';
import type { Command } from 'commander';
import { info, pullProgressReporter } from '../output.js';

/** Manifest entries that are InceptionResnetV1 checkpoints, and their weights name. */
const IRV1_BY_MODEL = new Map<string, InceptionResnetV1Weights>(
  Object.entries(INCEPTION_RESNET_V1_WEIGHTS).map(([weights, model]) => [model, weights]),
);

/**
 * Converts a pulled InceptionResnetV1 checkpoint to ONNX now, so the first `embed` does not pay for it; the
 * graph is cached by the checkpoint's hash, so this is a no-op when it is already there.
 */
async function convertInceptionResnetV1(store: ModelStore, model: string): Promise<void> {
  const weights = IRV1_BY_MODEL.get(model);
  if (weights === undefined) return;
  const graph = await loadInceptionResnetV1Graph(store, weights);
  info(
    graph.built
      ? `${model}: converted to ONNX in ${(graph.buildMs / 1000).toFixed(1)} s → ${graph.path}`
      : `${model}: ONNX graph already cached → ${graph.path}`,
  );
}

/** `facerec models pull|list|inspect`. */
export function registerModelsCommands(program: Command): void {
  const models = program
    .command('models')
    .description('manage model files: pull them into the cache, list their state, inspect checkpoints');

  models
    .command('pull')
    .description(
      'fetch model files into the cache (FACEREC_CACHE_DIR), from FACEREC_MODELS_MIRROR first, else over HTTPS; sha256-verified; InceptionResnetV1 checkpoints are also converted to ONNX and cached',
    )
    .argument('[names...]', 'model names from the manifest (default: all the MTCNN and face-api files)')
    .action(async (names: string[]) => {
      const progress = pullProgressReporter();
      const store = ModelStore.fromEnv(await loadManifest(), { onProgress: progress.onProgress });
      const wanted = names.length ? names : defaultPull(store);
      try {
        const pulled = await store.pull(wanted);
        progress.stop();
        for (const m of pulled) {
          info(`${m.name}: ${m.path} (${m.source}, sha256 ${m.sha256.slice(0, 12)}…)`);
          await convertInceptionResnetV1(store, m.name);
        }
      } finally {
        progress.stop();
      }
    });

  models
    .command('list')
    .description('show every model in the manifest as verified, cached, corrupt or missing')
    .option('--json', 'print JSON to stdout')
    .action(async (opts: { json?: boolean }) => {
      const store = ModelStore.fromEnv(await loadManifest());
      const status = await store.status();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        return;
      }
      info(`cache: ${store.cacheDir}${store.mirrorDir ? `   mirror: ${store.mirrorDir}` : ''}`);
      const width = Math.max(...status.map((s) => s.name.length));
      for (const s of status) {
        process.stdout.write(`${s.name.padEnd(width)}  ${s.state.padEnd(8)}  ${s.file}\n`);
      }
    });

  models
    .command('inspect')
    .description('list every tensor of a PyTorch checkpoint (legacy or zip format) as `key dtype [shape]`')
    .argument('<file>', 'a .pt file written by torch.save')
    .action(async (file: string) => {
      const tensors = await readCheckpointFile(file);
      for (const t of tensors.values())
        process.stdout.write(`${t.name} ${t.dtype} [${t.shape.join(', ')}]\n`);
      info(`${tensors.size} tensors`);
    });
}

function defaultPull(store: ModelStore): string[] {
  // The InceptionResnetV1 checkpoints are 100+ MB each; pull them by name when wanted.
  return store.manifest.models.filter((m) => !m.name.startsWith('inception-resnet-v1')).map((m) => m.name);
}
