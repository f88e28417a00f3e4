import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_MAX_BATCH_SIZE,
  decodeImage,
  type FaceEmbedder,
  FacerecError,
  InvalidOptionsError,
  loadManifest,
  ModelStore,
  type RgbImage,
} from '@facerec/framework';
import { resizeBilinearPil } from '@facerec/framework/internal';
import { type Command, Option } from 'commander';
import { readInput } from '../images.js';
import { info, loadNote, pullProgressReporter } from '../output.js';
import {
  type CliContext,
  embedderOption,
  loadEmbedder,
  providerOption,
  selectProvider,
} from '../providers.js';

interface EmbedOptions {
  embedder: string;
  provider: string;
  checkpoint?: string;
  weights?: string;
  json?: boolean;
  maxBatchSize?: string;
}

function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1)
    throw new InvalidOptionsError('embed', `${flag} must be a positive integer, got "${value}"`);
  return parsed;
}

/**
 * The embedder's input, from a decoded image taken as an already cropped face. Another size is stretched to
 * the input size (no aspect ratio kept) with the framework's Pillow-exact bilinear resize over the whole
 * image: that is what facenet-pytorch's `extract_face` does to a face box, so a crop saved at another size
 * embeds as the reference implementation would embed it, and it matches the Lambda pipeline's
 * `resizeToEmbedderInput`. sharp would work too, but its resampler differs from Pillow's by a few grey
 * levels and would need an encode/decode round trip.
 */
export function toEmbedderInput(image: RgbImage, embedder: FaceEmbedder): RgbImage {
  const { width, height } = embedder.preprocessing.inputSize;
  if (image.width === width && image.height === height) return image;
  return resizeBilinearPil(image, [0, 0, image.width, image.height], [width, height]);
}

/** float32 values need at most 9 significant digits to round-trip; the rest of a double's digits is noise. */
const float32Json = (v: number): number => Number(v.toPrecision(9));

type Result = { image: string; embedding: number[] } | { image: string; error: string };

/** `facerec embed <image...>`. */
export function registerEmbedCommand(program: Command, context: CliContext): void {
  program
    .command('embed')
    .description('embed face crops (each image is one already cropped face; other sizes are resized)')
    .argument('<image...>', 'JPEG, PNG or WebP files')
    .addOption(embedderOption(context))
    .addOption(providerOption(context))
    .addOption(
      new Option('--checkpoint <file.pt>', 'facenet-pytorch state dict to use instead of named weights'),
    )
    .addOption(
      new Option(
        '--weights <name>',
        'named pretrained weights, for embedders that take them (inception-resnet-v1: vggface2 (default) or casia-webface)',
      ).conflicts('checkpoint'),
    )
    .option('--json', 'print [{ image, embedding: [numbers] }] to stdout')
    .option('--max-batch-size <n>', `faces per inference call (default ${DEFAULT_MAX_BATCH_SIZE})`)
    .action(async (images: string[], opts: EmbedOptions) => {
      const maxBatchSize = positiveInteger('--max-batch-size', opts.maxBatchSize);
      let weights = opts.weights;
      if (opts.checkpoint !== undefined) {
        // Absolute, so that a checkpoint file named like a weights name is still read as a file.
        weights = path.resolve(opts.checkpoint);
        const file = await stat(weights).catch(() => undefined);
        if (!file?.isFile())
          throw new InvalidOptionsError('embed', `--checkpoint: no such file: ${opts.checkpoint}`);
      }

      const progress = pullProgressReporter();
      let embedder: FaceEmbedder;
      const started = performance.now();
      try {
        const modelStore = ModelStore.fromEnv(await loadManifest(), { onProgress: progress.onProgress });
        const provider = await selectProvider(context, opts.provider, { modelStore });
        embedder = await loadEmbedder(context, provider, opts.embedder, { weights, maxBatchSize });
      } finally {
        progress.stop();
      }
      if (!opts.json) {
        info(
          `${embedder.modelId} (${embedder.provider}, ${embedder.dimension}-d) loaded in ` +
            `${((performance.now() - started) / 1000).toFixed(1)} s${loadNote(embedder)}`,
        );
      }

      const results: Result[] = [];
      let failures = 0;
      const batch = maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
      try {
        // Decoded a batch at a time, so a long list of images never sits in memory all at once.
        for (let start = 0; start < images.length; start += batch) {
          const pending: { index: number; face: RgbImage }[] = [];
          for (const image of images.slice(start, start + batch)) {
            try {
              const decoded = await decodeImage(await readInput(image));
              const face = toEmbedderInput(decoded, embedder);
              if (face !== decoded && !opts.json)
                info(`${image}: resized ${decoded.width}×${decoded.height} → ${face.width}×${face.height}`);
              pending.push({ index: results.length, face });
              results.push({ image, embedding: [] });
            } catch (error) {
              // One unreadable image should not hide the others' results; it still fails the command.
              if (!FacerecError.isInstance(error)) throw error;
              const message = error.message;
              failures++;
              info(`${image}: ${message}`);
              results.push({ image, error: message });
            }
          }
          const vectors = await embedder.embed(pending.map((p) => p.face));
          pending.forEach(({ index }, i) => {
            const result = results[index]!;
            const embedding = Array.from(vectors[i]!, float32Json);
            results[index] = { image: result.image, embedding };
            if (!opts.json) {
              const head = embedding.slice(0, 5).map((v) => v.toFixed(4));
              process.stdout.write(`${result.image}\t${embedding.length}-d\t[${head.join(', ')}, …]\n`);
            }
          });
        }
      } finally {
        await embedder.dispose();
      }
      if (opts.json) {
        // One line per image: 512 numbers each on their own line would be unreadable.
        process.stdout.write(`[\n${results.map((r) => `  ${JSON.stringify(r)}`).join(',\n')}\n]\n`);
      }
      if (failures) process.exitCode = 2;
    });
}
