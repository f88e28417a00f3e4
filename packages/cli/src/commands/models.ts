import {
  CALIBRATION_DIR_ENV,
  type FaceEmbedder,
  loadManifest,
  ModelStore,
  readCheckpointFile,
} from '@facerec/framework';
import type { Command } from 'commander';
import { info, loadNote, pullProgressReporter } from '../output.js';
import {
  type CliContext,
  embedderOption,
  loadEmbedder,
  precisionOption,
  providerOption,
  selectProvider,
  weightsOption,
} from '../providers.js';

/** `models pull` without names skips files larger than this, or of unknown size (the 100+ MB InceptionResnetV1 checkpoints). */
const DEFAULT_PULL_MAX_BYTES = 50 * 1024 * 1024;

/** `facerec models pull|prepare|list|inspect`. */
export function registerModelsCommands(program: Command, context: CliContext): void {
  const models = program
    .command('models')
    .description('manage model files: pull them into the cache, list their state, inspect checkpoints');

  models
    .command('pull')
    .description(
      'fetch model files into the cache (FACEREC_CACHE_DIR), from FACEREC_MODELS_MIRROR first, then (face-api) the installed @vladmandic/face-api package, else over HTTPS; sha256-verified',
    )
    .argument(
      '[names...]',
      'model names from the manifest (default: every file under 50 MB: MTCNN and face-api)',
    )
    .option(
      '--json',
      'print [{ name, path, source, sha256 }] to stdout, and { name, error } for each model that could not be got',
    )
    .action(async (names: string[], opts: { json?: boolean }) => {
      const progress = pullProgressReporter();
      const store = ModelStore.fromEnv(await loadManifest(), { onProgress: progress.onProgress });
      const wanted = names.length ? names : defaultPull(store);
      try {
        const { pulled, failures, error } = await store.pullSettled(wanted);
        progress.stop();
        for (const m of pulled) info(`${m.name}: ${m.path} (${m.source}, sha256 ${m.sha256.slice(0, 12)}…)`);
        if (opts.json) {
          // The files that were got are listed even when others failed: a script sees both (and the exit code).
          const rows = [
            ...pulled.map(({ name, path, source, sha256 }) => ({ name, path, source, sha256 })),
            ...failures.map((f) => ({ name: f.name, error: f.error.message })),
          ];
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        }
        if (error) throw error;
      } finally {
        progress.stop();
      }
    });

  models
    .command('prepare')
    .description(
      "get everything a pipeline with this embedder needs ready in the cache: pull the detector's and the embedder's files (from the model registry) and let the provider convert and cache its graphs, so a read-only deployment (a container image) never converts at run time",
    )
    .addOption(embedderOption(context))
    .addOption(weightsOption('embedder'))
    .addOption(precisionOption())
    .addOption(providerOption(context))
    .action(async (opts: { embedder: string; weights?: string; precision?: string; provider: string }) => {
      const { registry } = context;
      const resolved = registry.resolveEmbedder(opts.embedder, { weights: opts.weights });
      const progress = pullProgressReporter();
      const manifest = await loadManifest();
      const store = ModelStore.fromEnv(manifest, { onProgress: progress.onProgress });
      const started = performance.now();
      let embedder: FaceEmbedder | undefined;
      try {
        if (
          opts.precision === 'int8' &&
          resolved.description.int8Calibration === undefined &&
          !process.env[CALIBRATION_DIR_ENV]
        ) {
          // No ranges ship and no calibration folder is named: only the provider knows whether its cache records
          // a calibration (from an earlier run with the folder). It loads the embedder first, reporting the pull,
          // and refuses before pulling the weights (InceptionResnetV1's are 107 MB) when none is recorded.
          const provider = await selectProvider(context, opts.provider, { modelStore: store });
          embedder = await loadEmbedder(context, provider, opts.embedder, {
            weights: opts.weights,
            precision: opts.precision,
          });
        }
        const entries = registry.manifestEntries(resolved);
        const pulled = await store.pull(entries);
        progress.stop();
        for (const m of pulled) info(`${m.name}: ${m.path} (${m.source}, sha256 ${m.sha256.slice(0, 12)}…)`);
      } catch (error) {
        await embedder?.dispose();
        throw error;
      } finally {
        progress.stop();
      }
      // The files are in the cache now; the provider re-reads them without reporting each one again.
      const provider = await selectProvider(context, opts.provider, {
        modelStore: ModelStore.fromEnv(manifest),
      });
      const detector = provider.detector(registry.defaults.detector);
      try {
        await detector.ready();
        // int8: the int8 graph is built and cached too (from $FACEREC_CALIBRATION_DIR's faces, else the shipped
        // ranges or the calibration recorded in the cache).
        embedder ??= await loadEmbedder(context, provider, opts.embedder, {
          weights: opts.weights,
          precision: opts.precision,
        });
        info(
          `${registry.defaults.detector} and ${embedder.modelId}${opts.precision === 'int8' ? ' (int8)' : ''} ready on ${provider.name} in ` +
            `${((performance.now() - started) / 1000).toFixed(1)} s${loadNote(embedder)} (cache: ${store.cacheDir})`,
        );
      } finally {
        await embedder?.dispose();
        await detector.dispose();
      }
    });

  models
    .command('list')
    .description(
      'show every model in the manifest as verified, cached, corrupt or missing (exit 1 when one is corrupt)',
    )
    .option('--json', 'print JSON to stdout')
    .action(async (opts: { json?: boolean }) => {
      const store = ModelStore.fromEnv(await loadManifest());
      const status = await store.status();
      const corrupt = status.filter((s) => s.state === 'corrupt').map((s) => s.name);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      } else {
        info(`cache: ${store.cacheDir}${store.mirrorDir ? `   mirror: ${store.mirrorDir}` : ''}`);
        const width = Math.max(...status.map((s) => s.name.length));
        for (const s of status) {
          process.stdout.write(`${s.name.padEnd(width)}  ${s.state.padEnd(8)}  ${s.file}\n`);
        }
      }
      if (corrupt.length) {
        // Missing files are normal (pulled when first needed); a damaged one is not, and a script should see it.
        info(
          `${corrupt.length} damaged in the cache: \`facerec models pull ${corrupt.join(' ')}\` replaces ${corrupt.length === 1 ? 'it' : 'them'}`,
        );
        process.exitCode = 1;
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
  // The InceptionResnetV1 checkpoints are 100+ MB each; pull them by name, or with `models prepare`.
  return (
    store.manifest.models
      // A file of unknown size (the InceptionResnetV1 checkpoints, trusted on first use) counts as large.
      .filter((m) => m.size !== null && m.size <= DEFAULT_PULL_MAX_BYTES)
      .map((m) => m.name)
  );
}
