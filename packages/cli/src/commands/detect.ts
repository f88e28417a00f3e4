import path from 'node:path';
import {
  DEFAULT_MTCNN_OPTIONS,
  encodePng,
  InvalidInputError,
  InvalidOptionsError,
  MIN_FACE_SIZE_SETTING,
} from '@facerec/framework';
import { visibleText, writeFileAtomic } from '@facerec/framework/internal';
import type { DetectorDescription, ModelRegistry } from '@facerec/framework/registry';
import { type Command, Option } from 'commander';
import {
  expandImageArguments,
  forEachImage,
  type ImageLimitFlags,
  imageLimitsFlag,
  maxImageBytesOption,
  maxImagePixelsOption,
} from '../images.js';
import {
  count,
  info,
  jsonLinesOption,
  numberFlag,
  prepareOutputFolder,
  round,
  rowFormat,
  rowProgress,
  rowSink,
} from '../output.js';
import {
  type CliContext,
  embedderOption,
  imageCommandProvider,
  providerOption,
  workersOption,
} from '../providers.js';

interface DetectOptions extends ImageLimitFlags {
  provider: string;
  workers: string;
  json?: boolean;
  jsonl?: boolean;
  minFaceSize?: string;
  thresholds?: string;
  factor?: string;
  cropsDir?: string;
  embedder: string;
}

/**
 * `{ [key]: value }` for a flag given (nothing for one left out), when the detector's options take `key`: MTCNN's
 * flags, which a detector of another registry may not take, are refused for it, naming the flag. A value out of
 * the detector's range is left for the detector to refuse.
 */
export function flagOption(
  command: string,
  detector: DetectorDescription,
  flag: string,
  key: string,
  value: unknown,
): Record<string, unknown> {
  if (value === undefined) return {};
  if (unknownKey(detector, key, value)) {
    throw new InvalidOptionsError(
      command,
      `${flag}: the detector "${detector.id}" takes no ${key} option; leave ${flag} out`,
    );
  }
  return { [key]: value };
}

/**
 * Whether the detector's options refuse `key` as unknown (an option of a strict schema it lacks); a value out of
 * range, or another option the schema requires, is not that.
 */
function unknownKey(detector: DetectorDescription, key: string, value: unknown): boolean {
  const checked = detector.options.safeParse({ [key]: value });
  return !checked.success && checked.error.issues.some((issue) => issue.code === 'unrecognized_keys');
}

/**
 * Maps the command-line flags onto the detector's options (validated by the detector itself): MTCNN's, see
 * {@link flagOption}. `keepAll` (every face, not one) goes to a detector whose options take it.
 */
export function detectorOptions(opts: DetectOptions, detector: DetectorDescription): Record<string, unknown> {
  const keepAll = unknownKey(detector, 'keepAll', true) ? {} : { keepAll: true };
  let thresholds: number[] | undefined;
  if (opts.thresholds !== undefined) {
    thresholds = opts.thresholds.split(',').map((p) => Number(p.trim()));
    // Scores are probabilities: each threshold strictly between 0 and 1, as MTCNN's options take them.
    if (thresholds.length !== 3 || thresholds.some((p) => !Number.isFinite(p) || p <= 0 || p >= 1)) {
      throw new InvalidOptionsError(
        'detect',
        `--thresholds needs three numbers a,b,c, each above 0 and below 1, got "${opts.thresholds}"`,
      );
    }
  }
  // The ranges the MTCNN options accept, said with the flags' names.
  const minFaceSize = minFaceSizeFlag('detect', opts.minFaceSize);
  const factor = numberFlag('detect', '--factor', opts.factor, { above: 0.1, below: 0.95 });
  return {
    ...keepAll,
    ...flagOption('detect', detector, '--min-face-size', 'minFaceSize', minFaceSize),
    ...flagOption('detect', detector, '--factor', 'factor', factor),
    ...flagOption('detect', detector, '--thresholds', 'thresholds', thresholds),
  };
}

/**
 * `--min-face-size`, for every command that finds faces (detect, recognize, gallery search, serve): MTCNN's
 * `minFaceSize`, as `FACEREC_MIN_FACE_SIZE` on Lambda.
 */
export function minFaceSizeOption(): Option {
  return new Option(
    '--min-face-size <n>',
    `smallest face to look for, in whole pixels (default ${DEFAULT_MTCNN_OPTIONS.minFaceSize}, ${MIN_FACE_SIZE_SETTING.min}–${MIN_FACE_SIZE_SETTING.max}): where the search starts, not a filter (somewhat smaller faces are still found)`,
  );
}

/**
 * `--min-face-size` as the registry's default detector's options (`{ minFaceSize }`, or nothing when the flag is
 * left out), checked now: refused for a detector that takes no such option (see {@link flagOption}).
 */
export function minFaceSizeOptions(
  command: string,
  registry: ModelRegistry,
  value: string | undefined,
): { minFaceSize?: number } {
  return flagOption(
    command,
    registry.detector(registry.defaults.detector),
    '--min-face-size',
    'minFaceSize',
    minFaceSizeFlag(command, value),
  );
}

/** `--min-face-size` checked: a whole number of pixels, 12–4096, as `FACEREC_MIN_FACE_SIZE` takes it. */
export function minFaceSizeFlag(command: string, value: string | undefined): number | undefined {
  return numberFlag(command, '--min-face-size', value, { ...MIN_FACE_SIZE_SETTING, integer: true });
}

/** `facerec detect <image...>`. */
export function registerDetectCommand(program: Command, context: CliContext): void {
  const { registry } = context;
  program
    .command('detect')
    .description(`find every face in each image with ${registry.defaults.detector} (faces largest first)`)
    .argument('<image...>', 'JPEG, PNG or WebP files, or folders of them (searched recursively)')
    .addOption(providerOption(context))
    .addOption(workersOption())
    .addOption(maxImageBytesOption())
    .addOption(maxImagePixelsOption())
    .option('--json', 'print [{ image, width, height, faces: [{ box, score, landmarks }] }] to stdout')
    .addOption(jsonLinesOption('the rows'))
    .addOption(minFaceSizeOption())
    .option('--thresholds <a,b,c>', 'P-Net, R-Net, O-Net score thresholds (default 0.6,0.7,0.7)')
    .option('--factor <f>', 'image pyramid scale step (default 0.709)')
    .option(
      '--crops-dir <dir>',
      'write each face crop as <dir>/<image name>_<index>.png (<image name>~2_<index>.png for a second image of that name; --json gives each face its crop file)',
    )
    .addOption(
      embedderOption(context, '--crops-dir cuts the crops this embedder takes (its size, shape and margin)'),
    )
    .action(async (args: string[], opts: DetectOptions, command: Command) => {
      const images = await expandImageArguments('detect', args);
      const format = rowFormat(opts);
      // `--embedder` only shapes the crops: said, rather than a flag that silently does nothing.
      if (!opts.cropsDir && command.getOptionValueSource('embedder') === 'cli') {
        info(
          'warning: --embedder only chooses the crops --crops-dir writes; without --crops-dir it has no effect',
        );
      }
      const crop = opts.cropsDir ? registry.embedder(opts.embedder).preprocessing.crop : undefined;
      const options = detectorOptions(opts, registry.detector(registry.defaults.detector)); // before any worker starts
      const limits = imageLimitsFlag('detect', opts);
      // Before the workers start: a failure after would leave them running (the command never ended).
      if (opts.cropsDir) await prepareOutputFolder('detect', '--crops-dir', opts.cropsDir);
      const { provider, workers, close } = await imageCommandProvider(context, 'detect', opts, images.length);
      const { rows: results, emit } = rowSink<unknown>(format);
      // Crop names by image stem, fixed before any image runs (they may finish in any order): a second image of
      // the same stem (another folder) gets `<stem>~2`, and so on, instead of writing over the first one's crops;
      // a name taken already by another image's stem (`photo~2.jpg` after two `photo.jpg`) is skipped too.
      const used = new Set<string>();
      const stems = images.map((image) => {
        const base = path.basename(image, path.extname(image));
        let stem = base;
        for (let n = 2; used.has(stem); n++) stem = `${base}~${n}`;
        used.add(stem);
        return { base, stem };
      });
      try {
        const detector = provider.detector(registry.defaults.detector, options);
        try {
          await forEachImage(
            images,
            limits,
            async (image, decoded, index) => {
              const { base, stem } = stems[index]!;
              const [found] = await detector.detectFaces([decoded], crop ? { crop } : {});
              const { faces, crops } = found!;
              const { width, height } = decoded; // the pixels are not kept until the results are printed
              const written: string[] = [];
              if (opts.cropsDir) {
                for (const [i, c] of crops.entries()) {
                  const file = path.join(opts.cropsDir, `${stem}_${i}.png`);
                  // Through a temporary file renamed into place: a link planted at the name (a shared /tmp
                  // folder) is replaced, not followed to overwrite whatever it points to. A crop that cannot be
                  // written (a folder at its name, a full disk) is this image's failure, said with the path.
                  await writeFileAtomic(file, await encodePng(c.image)).catch(
                    (error: NodeJS.ErrnoException) => {
                      throw new InvalidInputError(
                        `cannot write the crop ${file}: ${error.code === 'EISDIR' ? 'a folder has its name' : error.message}`,
                        { cause: error },
                      );
                    },
                  );
                  written.push(file);
                }
              }
              // Printed in the images' order, whichever finished first.
              return () => {
                emit({
                  image,
                  width,
                  height,
                  faces: faces.map((f, i) => ({
                    box: f.box.map((v) => round(v, 3)),
                    score: round(f.score, 6),
                    landmarks: f.landmarks.map(([x, y]) => [round(x, 3), round(y, 3)]),
                    ...(opts.cropsDir ? { crop: written[i] } : {}),
                  })),
                });
                if (format !== 'text') return;
                if (stem !== base && written.length) {
                  info(
                    `${visibleText(image)}: crops written as ${visibleText(stem)}_<n>.png (an earlier image's crops have the name ${visibleText(base)})`,
                  );
                }
                info(`${visibleText(image)}: ${count(faces.length, 'face')} (${width}×${height})`);
                for (const f of faces) {
                  const [x1, y1, x2, y2] = f.box.map((v) => Math.round(v));
                  process.stdout.write(
                    `${visibleText(image)}\t[${x1}, ${y1}, ${x2}, ${y2}]\tscore ${f.score.toFixed(4)}\n`,
                  );
                }
              };
            },
            (image, error) => emit({ image, error }),
            rowProgress(format, 'detecting'),
            // One more image than workers in flight: one decoding while each worker runs the detector.
            workers + 1,
            opts.cropsDir ? `the crops (in ${visibleText(opts.cropsDir)})` : undefined,
          );
        } finally {
          await detector.dispose();
        }
      } finally {
        await close();
      }
      if (format === 'json') process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    });
}
