import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_MAX_BATCH_SIZE,
  type FaceDetection,
  type FaceDetector,
  type FaceEmbedder,
  FacerecError,
  fitFaceCrop,
  InvalidOptionsError,
  loadManifest,
  ModelStore,
  ModelUnavailableError,
  type RgbImage,
  withPrecroppedFallback,
} from '@facerec/framework';
import { boxArea, visibleText } from '@facerec/framework/internal';
import { type Command, Option } from 'commander';
import {
  decodeWithin,
  expandImageArguments,
  forEachImage,
  type ImageLimitFlags,
  type ImageLimits,
  imageLimitsFlag,
  maxImageBytesOption,
  maxImagePixelsOption,
  onInterrupt,
  readInput,
  reportFailures,
  reportImageError,
  stdoutWanted,
} from '../images.js';
import {
  count,
  imageProgress,
  info,
  jsonLinesOption,
  loadNote,
  positiveInteger,
  pullProgressReporter,
  type RowFormat,
  round,
  rowFormat,
  rowProgress,
  rowSink,
} from '../output.js';
import {
  type CliContext,
  embedderOption,
  loadEmbedder,
  precisionOption,
  providerOption,
  selectProvider,
} from '../providers.js';

interface EmbedOptions extends ImageLimitFlags {
  embedder: string;
  provider: string;
  checkpoint?: string;
  weights?: string;
  json?: boolean;
  jsonl?: boolean;
  maxBatchSize?: string;
  precision?: string;
  detect?: boolean;
}

/**
 * Below this share of the frame, the largest face is too small for the image to be a face crop: facenet's
 * 160×160 crops of the reference images put the face box over at least 30 % of the frame (68 of 70; the other
 * two hold no face at all), a portrait or group photo well under 10 %.
 */
export const MIN_CROP_FACE_SHARE = 0.25;

/**
 * Why an image given to plain `embed` does not look like one face crop, from what the detector finds in it:
 * several faces, a face much smaller than the frame, or none at all. Empty when it looks like a crop.
 */
export function cropWarnings(faces: readonly FaceDetection[], frame: RgbImage): string[] {
  const hint = '`facerec embed --detect` embeds each face of a photo';
  if (faces.length === 0) return ['no face detected in it: its embedding may not describe a face'];
  if (faces.length > 1)
    return [`${faces.length} faces detected: it looks like a photo, not one face crop (${hint})`];
  const share = Math.max(0, boxArea(faces[0]!)) / (frame.width * frame.height);
  if (share < MIN_CROP_FACE_SHARE) {
    return [
      `the face covers ${(100 * share).toFixed(0)} % of the frame: it looks like a photo, not a face crop (${hint})`,
    ];
  }
  return [];
}

/** float32 values need at most 9 significant digits to round-trip; the rest of a double's digits is noise. */
const float32Json = (v: number): number => Number(v.toPrecision(9));

type Result = { image: string; embedding: number[]; warnings?: string[] } | { image: string; error: string };

interface DetectedResult {
  image: string;
  width: number;
  height: number;
  faces: { box: number[]; score: number; embedding: number[] }[];
}

/** `embed --detect`: every face of each photo, cut with the embedder's crop policy, one embedding each. */
async function embedDetected(
  images: readonly string[],
  detector: FaceDetector,
  embedder: FaceEmbedder,
  format: RowFormat,
  limits: ImageLimits,
): Promise<void> {
  const { rows: results, emit } = rowSink<DetectedResult | { image: string; error: string }>(format);
  const crop = embedder.preprocessing.crop;
  await forEachImage(
    images,
    limits,
    async (image, decoded) => {
      const [found] = await detector.detectFaces([decoded], { crop });
      const { faces, crops } = found!;
      const vectors = await embedder.embed(crops.map((c) => c.image));
      const result: DetectedResult = {
        image,
        width: decoded.width,
        height: decoded.height,
        faces: faces.map((f, i) => ({
          box: f.box.map((v) => round(v, 3)),
          score: round(f.score, 6),
          embedding: Array.from(vectors[i]!, float32Json),
        })),
      };
      emit(result);
      if (format !== 'text') return;
      info(`${visibleText(image)}: ${count(faces.length, 'face')}`);
      result.faces.forEach((f, i) => {
        const head = f.embedding.slice(0, 5).map((v) => v.toFixed(4));
        const box = f.box.map((v) => Math.round(v)).join(', ');
        process.stdout.write(
          `${visibleText(image)}#${i}\t[${box}]\t${f.embedding.length}-d\t[${head.join(', ')}, …]\n`,
        );
      });
    },
    (image, error) => emit({ image, error }),
    rowProgress(format, 'embedding'),
  );
  if (format === 'json') {
    // One line per face: 512 numbers each on their own line would be unreadable.
    const lines = results.map((r) =>
      'faces' in r
        ? `  {"image":${JSON.stringify(r.image)},"width":${r.width},"height":${r.height},"faces":[${r.faces
            .map((f) => `\n    ${JSON.stringify(f)}`)
            .join(',')}${r.faces.length ? '\n  ' : ''}]}`
        : `  ${JSON.stringify(r)}`,
    );
    process.stdout.write(`[\n${lines.join(',\n')}\n]\n`);
  }
}

/** `facerec embed <image...>`. */
export function registerEmbedCommand(program: Command, context: CliContext): void {
  program
    .command('embed')
    .description(
      'embed face crops (each image is one already cropped face; another size is fitted as the embedder crops: stretched for facenet, padded to a square for face-api.js), or with --detect every face of photos',
    )
    .argument('<image...>', 'JPEG, PNG or WebP files, or folders of them (searched recursively)')
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
    .option(
      '--detect',
      'each image is a photo: find every face and embed each, cut as the embedder takes it; --json prints [{ image, width, height, faces: [{ box, score, embedding }] }]',
    )
    .option('--json', 'print [{ image, embedding: [numbers], warnings? }] to stdout')
    .addOption(
      jsonLinesOption(
        "--json's rows",
        'as each image is done (without --detect: a batch of --max-batch-size at a time)',
      ),
    )
    .option('--max-batch-size <n>', `faces per inference call (default ${DEFAULT_MAX_BATCH_SIZE})`)
    .addOption(precisionOption())
    .addOption(maxImageBytesOption())
    .addOption(maxImagePixelsOption())
    .action(async (args: string[], opts: EmbedOptions) => {
      const images = await expandImageArguments('embed', args);
      const format = rowFormat(opts);
      const maxBatchSize = positiveInteger('embed', '--max-batch-size', opts.maxBatchSize);
      const limits = imageLimitsFlag('embed', opts);
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
      /** Undefined for plain embed when the detector's weights cannot be had: its crop checks are skipped. */
      let detector: FaceDetector | undefined;
      const started = performance.now();
      try {
        const modelStore = ModelStore.fromEnv(await loadManifest(), { onProgress: progress.onProgress });
        const provider = await selectProvider(context, opts.provider, { modelStore });
        embedder = await loadEmbedder(context, provider, opts.embedder, {
          weights,
          maxBatchSize,
          precision: opts.precision,
          checkpointFlag: '--checkpoint',
        });
        // Plain embed runs it too, only to warn when an image is not one face crop.
        // A face crop that fills the frame is padded and detected again rather than reported as no face.
        const checker = withPrecroppedFallback(provider.detector(context.registry.defaults.detector));
        detector = checker;
        await checker.ready().catch(async (error: unknown) => {
          await checker.dispose();
          // Offline without the detector's weights, plain embed still embeds (face-api.js's net ships its own):
          // only the check that each image is one face crop is left out, said once.
          if (!opts.detect && ModelUnavailableError.isInstance(error)) {
            detector = undefined;
            info(
              `warning: images are not checked for being one face crop: ${context.registry.defaults.detector} cannot be loaded (${error.message})`,
            );
            return;
          }
          await embedder.dispose();
          throw error;
        });
      } finally {
        progress.stop();
      }
      if (format === 'text') {
        info(
          `${embedder.modelId} (${embedder.provider}, ${embedder.dimension}-d) loaded in ` +
            `${((performance.now() - started) / 1000).toFixed(1)} s${loadNote(embedder)}`,
        );
      }

      if (opts.detect) {
        const finder = detector!; // loaded, or the command failed above
        try {
          await embedDetected(images, finder, embedder, format, limits);
        } finally {
          await Promise.all([finder.dispose(), embedder.dispose()]);
        }
        return;
      }

      const results: Result[] = [];
      // --jsonl: the rows of each batch, once its embeddings are in.
      const jsonLines = rowSink<Result>('jsonl');
      let failures = 0;
      let printed = 0;
      const batch = maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
      const shown = format !== 'text' && images.length > 1 ? imageProgress('embedding') : undefined;
      // Results are printed a batch at a time: a stop says how many images have theirs out.
      const interrupted = onInterrupt(images.length, () => printed, rowProgress(format, 'embedding'), shown);
      try {
        // Decoded a batch at a time, so a long list of images never sits in memory all at once.
        // Until stdout has no reader (`| head`): then the batch in progress ends, and no other starts.
        for (let start = 0; start < images.length && stdoutWanted(); start += batch) {
          const pending: { index: number; face: RgbImage }[] = [];
          for (const image of images.slice(start, start + batch)) {
            try {
              const decoded = await decodeWithin(await readInput(image, limits), limits);
              const warnings = detector ? cropWarnings(await detector.detect(decoded), decoded) : [];
              for (const warning of warnings) info(`warning: ${visibleText(image)}: ${warning}`);
              // A crop of another size: brought to the embedder's input as its crop policy shapes a face
              // (stretched for facenet-pytorch's box, padded to a square for face-api.js's net).
              const crop = embedder.preprocessing.crop;
              const face = fitFaceCrop(decoded, crop);
              if (face !== decoded && format === 'text') {
                const padded = crop.shape !== 'box' && decoded.width !== decoded.height;
                info(
                  `${visibleText(image)}: ${padded ? 'padded to a square and resized' : 'resized'} ${decoded.width}×${decoded.height} → ${face.width}×${face.height}`,
                );
              }
              pending.push({ index: results.length, face });
              results.push({ image, embedding: [], ...(warnings.length ? { warnings } : {}) });
            } catch (error) {
              // One unreadable image should not hide the others' results; it still fails the command.
              if (!FacerecError.isInstance(error)) throw error;
              const message = error.message;
              failures++;
              reportImageError(image, error);
              results.push({ image, error: message });
            }
          }
          const vectors = await embedder.embed(pending.map((p) => p.face));
          pending.forEach(({ index }, i) => {
            const result = results[index]! as { image: string; warnings?: string[] };
            const embedding = Array.from(vectors[i]!, float32Json);
            results[index] = {
              image: result.image,
              embedding,
              ...(result.warnings ? { warnings: result.warnings } : {}),
            };
            if (format === 'text') {
              const head = embedding.slice(0, 5).map((v) => v.toFixed(4));
              process.stdout.write(
                `${visibleText(result.image)}\t${embedding.length}-d\t[${head.join(', ')}, …]\n`,
              );
            }
          });
          // --jsonl: the batch's rows (its failures too), in the images' order; not kept.
          if (format === 'jsonl') {
            for (const row of results.splice(0)) jsonLines.emit(row);
          }
          const done = Math.min(start + batch, images.length);
          printed = done;
          shown?.onProgress({ done, total: images.length, file: images[done - 1]! });
        }
      } finally {
        interrupted.release();
        shown?.stop();
        await Promise.all([detector?.dispose(), embedder.dispose()]);
      }
      if (format === 'json') {
        // One line per image: 512 numbers each on their own line would be unreadable.
        process.stdout.write(`[\n${results.map((r) => `  ${JSON.stringify(r)}`).join(',\n')}\n]\n`);
      }
      reportFailures(images.length, failures);
    });
}
