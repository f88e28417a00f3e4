import { loadManifest, ModelStore, readCheckpointFile } from '@facerec/framework';
import type { Command } from 'commander';
import { info, pullProgressReporter } from '../output.js';

/** `facerec models pull|list|inspect`. */
export function registerModelsCommands(program: Command): void {
  const models = program
    .command('models')
    .description('manage model files: pull them into the cache, list their state, inspect checkpoints');

  models
    .command('pull')
    .description(
      'fetch model files into the cache (FACEREC_CACHE_DIR), from FACEREC_MODELS_MIRROR first, else over HTTPS; sha256-verified',
    )
    .argument('[names...]', 'model names from the manifest (default: all the MTCNN and face-api files)')
    .action(async (names: string[]) => {
      const progress = pullProgressReporter();
      const store = ModelStore.fromEnv(await loadManifest(), { onProgress: progress.onProgress });
      const wanted = names.length ? names : defaultPull(store);
      try {
        const pulled = await store.pull(wanted);
        progress.stop();
        for (const m of pulled) info(`${m.name}: ${m.path} (${m.source}, sha256 ${m.sha256.slice(0, 12)}…)`);
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
