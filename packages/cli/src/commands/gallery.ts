import { existsSync } from 'node:fs';
import {
  type CalibrationResult,
  calibrateThreshold,
  calibrateThresholdLeaveOneOut,
  type DecodeLimits,
  type EmbedderPrecision,
  enrollGallery,
  FacerecError,
  FileGallery,
  FileGalleryStore,
  findLookAlikes,
  formatCalibration,
  type GalleryStore,
  GalleryStoreNotFoundError,
  InvalidInputError,
  InvalidOptionsError,
  identityNameIssue,
  type LabelledProbe,
  NO_FACE_RESULT,
  reservedIdentityIssue,
  type SkippedFile,
  withPrecroppedFallback,
} from '@facerec/framework';
import {
  importOptionalPackage,
  readLabelledFolder,
  storableSource,
  visibleText,
} from '@facerec/framework/internal';
import type { Command } from 'commander';
import {
  expandImageArguments,
  forEachImage,
  type ImageLimitFlags,
  imageLimitsFlag,
  maxImageBytesOption,
  maxImagePixelsOption,
  tooLargeHint,
} from '../images.js';
import {
  checkGalleryOut,
  count,
  countProgress,
  galleryFile,
  galleryThreshold,
  imageProgress,
  info,
  jsonLinesOption,
  numberFlag,
  openExistingGallery,
  round,
  rowFormat,
  rowProgress,
  rowSink,
  shownDistance,
  shownThreshold,
  thresholdFields,
  thresholdFlag,
  warnIfEmpty,
} from '../output.js';
import {
  type CliContext,
  embedderOption,
  imageCommandProvider,
  loadEmbedder,
  loadGalleryEmbedder,
  metricOption,
  precisionOption,
  providerOption,
  selectProvider,
  weightsOption,
  workersOption,
} from '../providers.js';
import { minFaceSizeOption, minFaceSizeOptions } from './detect.js';
import { openCliGalleryStore, registerGalleryStoreCommands } from './gallery-store.js';

/** Skipped images shown on stderr: at most this many lines, then a count per reason (`--json` lists all). */
const SKIPPED_LINES = 20;

/** Examples from which `gallery calibrate --leave-one-out` shows its progress (about 2 s of work). */
const LEAVE_ONE_OUT_PROGRESS_FROM = 5000;

/** How often `gallery copy` says the time of an index build it waits for. */
const INDEXING_REPORT_MS = 30_000;

/** The identity folders of which no photo was enrolled: people missing from the gallery, one line. */
function infoUnenrolled(unenrolled: readonly string[]): void {
  if (!unenrolled.length) return;
  const shown = unenrolled.slice(0, SKIPPED_LINES).map((name) => JSON.stringify(name));
  const more = unenrolled.length - shown.length;
  info(
    `not in the gallery, no photo enrolled: ${count(unenrolled.length, 'identity', 'identities')} (${shown.join(', ')}${more ? `, … and ${more} more` : ''})`,
  );
}

/** The skipped images of an enrollment, one line each up to {@link SKIPPED_LINES}, then counts per reason. */
function infoSkipped(skipped: readonly SkippedFile[], prefix: string): void {
  for (const s of skipped.slice(0, SKIPPED_LINES)) {
    info(`${prefix}${visibleText(s.file)}: ${s.reason}${s.detail ? ` (${s.detail})` : ''}`);
  }
  // Every photo too large, counted: the values that take them all.
  const over = skipped.flatMap((s) => (s.tooLarge ? [s.tooLarge] : []));
  if (over.length) info(`${prefix}(${count(over.length, 'photo')} too large: ${tooLargeHint(over)})`);
  if (skipped.length <= SKIPPED_LINES) return;
  const reasons = new Map<string, number>();
  for (const s of skipped.slice(SKIPPED_LINES)) reasons.set(s.reason, (reasons.get(s.reason) ?? 0) + 1);
  info(
    `${prefix}… and ${skipped.length - SKIPPED_LINES} more: ` +
      `${[...reasons].map(([reason, n]) => `${n} ${reason}`).join('; ')} (--json lists every one)`,
  );
}

/** `gallery calibrate <dir>`: the probes in `dir` embedded with the gallery's embedder, then the threshold. */
async function calibrateOnProbes(
  context: CliContext,
  gallery: FileGallery,
  dir: string,
  opts: {
    readonly provider: string;
    readonly weights?: string | undefined;
    readonly precision?: EmbedderPrecision | undefined;
    readonly allowOverlap?: boolean | undefined;
    readonly targetFar: number;
    readonly decodeLimits: DecodeLimits;
  },
): Promise<{ result: CalibrationResult; probes: LabelledProbe[] }> {
  // Named as the command's folder, before any model loads (enrollGallery would name itself).
  await readLabelledFolder(dir, 'gallery calibrate');
  const provider = await selectProvider(context, opts.provider);
  const embedder = await loadGalleryEmbedder(context, provider, gallery, opts);
  const detector = provider.detector(context.registry.defaults.detector);
  const progress = imageProgress('embedding probes');
  let probes: LabelledProbe[];
  try {
    const labelled = await enrollGallery({
      root: dir,
      detector,
      embedder,
      decodeLimits: opts.decodeLimits,
      onProgress: progress.onProgress,
    });
    progress.stop();
    // One face under two names: at least one label is wrong, and either way its pairs would be counted as
    // genuine and as impostor. Both copies are left out (enrollment kept the first and skipped the other).
    const conflicts = labelled.skipped.filter(
      (s) => s.duplicateOf !== undefined && s.duplicateOf.identity !== s.file.split('/')[0],
    );
    const leftOut = new Set(conflicts.map((s) => storableSource(s.duplicateOf!.file)));
    infoSkipped(
      labelled.skipped.filter((s) => !conflicts.includes(s)),
      '  skipped ',
    );
    for (const s of conflicts) {
      info(
        `  left out ${visibleText(s.file)} and ${visibleText(s.duplicateOf!.file)}: the same face under two names ` +
          `(${visibleText(s.file.split('/')[0]!)} and ${visibleText(s.duplicateOf!.identity)}); keep it under its own name only`,
      );
    }
    probes = labelled.gallery.names.flatMap((identity) =>
      labelled.gallery
        .examples(identity)
        .filter((e) => !leftOut.has(e.source))
        .map((e) => ({ identity, embedding: e.embedding, source: e.source })),
    );
  } finally {
    progress.stop();
    await Promise.all([detector.dispose(), embedder.dispose()]);
  }
  const result = asCommand('gallery calibrate', 'calibrateThreshold', () =>
    calibrateThreshold(gallery, probes, {
      targetFar: opts.targetFar,
      allowOverlap: opts.allowOverlap === true,
      precision: opts.precision ?? 'fp32',
    }),
  );
  return { result, probes };
}

/** `facerec enroll`, `facerec recognize`, `facerec gallery calibrate`. */
export function registerGalleryCommands(program: Command, context: CliContext): void {
  const { registry } = context;
  program
    .command('enroll')
    .description(
      'build a gallery from <dir>/<identity>/*.{jpg,png,webp}: one face per photo (photos with several are skipped), checked, embedded, stored',
    )
    .argument('<dir>', 'one sub-folder per identity')
    .requiredOption('--out <file>', 'gallery file to write')
    .addOption(embedderOption(context))
    .addOption(weightsOption('embedder'))
    .addOption(providerOption(context))
    .addOption(metricOption())
    .addOption(maxImageBytesOption())
    .addOption(maxImagePixelsOption())
    .option('--threshold <t>', 'distance above which a face is unknown (calibrate later to set it from data)')
    .option(
      '--json',
      'print { out, modelId, threshold, thresholdSource, identities, enrolled: [{ identity, file }], skipped: [{ file, reason, detail?, tooLarge?, duplicateOf? }], unenrolled, lookAlikes: [{ source, enrolledAs, identity, distance }] } to stdout',
    )
    .option(
      '--strict',
      'write no gallery (exit 2) when a photo or folder is skipped (hidden entries, such as .DS_Store, aside)',
    )
    .action(
      async (
        dir: string,
        opts: ImageLimitFlags & {
          out: string;
          embedder: string;
          weights?: string;
          provider: string;
          metric: 'euclidean' | 'cosine';
          threshold?: string;
          json?: boolean;
          strict?: boolean;
        },
      ) => {
        const threshold = thresholdFlag('enroll', opts.threshold);
        const decodeLimits = imageLimitsFlag('enroll', opts);
        opts.out = galleryFile('enroll', opts.out, '--out');
        await checkGalleryOut('enroll', opts.out);
        // Before any model is loaded (or downloaded: a missing folder said as a download failure otherwise).
        await readLabelledFolder(dir, 'enroll');
        const provider = await selectProvider(context, opts.provider);
        const embedder = await loadEmbedder(context, provider, opts.embedder, { weights: opts.weights });
        const detector = provider.detector(registry.defaults.detector);
        const progress = imageProgress('enrolling');
        try {
          const result = await enrollGallery({
            root: dir,
            detector,
            embedder,
            metric: opts.metric,
            ...(threshold === undefined ? {} : { threshold }),
            decodeLimits,
            onProgress: progress.onProgress,
          });
          progress.stop();
          // With --strict, every skip but hidden entries (`.DS_Store` and other dot-names) refuses the gallery.
          const refused = opts.strict ? result.skipped.filter((x) => x.reason !== 'hidden') : [];
          if (!result.enrolled.length || refused.length) {
            // The JSON too (no gallery written: `out` null), so that a script sees why.
            if (opts.json) {
              const summary = {
                out: null,
                modelId: embedder.modelId,
                identities: [],
                enrolled: [],
                skipped: result.skipped,
                unenrolled: result.unenrolled,
              };
              process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
            }
            infoSkipped(result.skipped, '  skipped ');
            if (result.enrolled.length) {
              infoUnenrolled(result.unenrolled);
              throw new InvalidInputError(
                `--strict: ${count(refused.length, 'photo or folder', 'photos or folders')} skipped (reasons above), so no gallery was written to ${opts.out}`,
              );
            }
            // Images that were found but all refused are not a folder-layout problem.
            const inFolders = result.skipped.some((s) => s.file.includes('/') && !s.file.endsWith('/'));
            throw new InvalidInputError(
              inFolders
                ? `nothing enrolled from ${dir}, so no gallery was written: every image was skipped (reasons above)`
                : `nothing enrolled from ${dir}, so no gallery was written: it needs <dir>/<identity>/*.{jpg,png,webp}, one folder per person`,
            );
          }
          await result.gallery.save(opts.out);
          const ids = result.gallery.names;
          // As gallery list --json: the threshold matching applies, and where it comes from.
          const matching = thresholdFields(result.gallery, registry);
          // Photos another person of the gallery is recognised in, at that threshold (none without one).
          const lookAlikes =
            matching.threshold > 0 ? await findLookAlikes(result.gallery, matching.threshold) : [];
          if (opts.json) {
            const summary = {
              out: opts.out,
              modelId: embedder.modelId,
              ...matching,
              identities: ids,
              enrolled: result.enrolled.map(({ identity, file }) => ({ identity, file })),
              skipped: result.skipped,
              unenrolled: result.unenrolled,
              lookAlikes: lookAlikes.map((l) => ({
                ...l,
                distance: shownDistance(l.distance, matching.threshold),
              })),
            };
            process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
          }
          info(
            `enrolled ${count(result.enrolled.length, 'image')} of ${count(ids.length, 'identity', 'identities')} into ${opts.out} (${embedder.modelId})`,
          );
          if (result.skipped.length) {
            info(`skipped ${result.skipped.length}:`);
            infoSkipped(result.skipped, '  ');
          }
          infoUnenrolled(result.unenrolled);
          for (const l of lookAlikes.slice(0, SKIPPED_LINES)) {
            info(
              `warning: ${visibleText(l.source)}, enrolled as ${visibleText(l.enrolledAs)}, is within the threshold of ` +
                `${visibleText(l.identity)} too (distance ${shownDistance(l.distance, matching.threshold)} ≤ threshold ` +
                `${matching.threshold}): a mislabelled photo, one person under two names, or two people too alike at this ` +
                'threshold? Recognition may answer a face like it as either',
            );
          }
          if (lookAlikes.length > SKIPPED_LINES) {
            info(
              `… and ${lookAlikes.length - SKIPPED_LINES} more photos within the threshold of another person (--json lists every one)`,
            );
          }
          if (threshold === undefined) {
            const recommended = registry.embedder(opts.embedder).thresholds[opts.metric];
            info(
              recommended
                ? `threshold not set: recognition uses ${opts.embedder}'s recommended ${opts.metric} threshold ` +
                    `${recommended.value} (measured on ${recommended.measuredOn}) until \`facerec gallery calibrate\` sets one. ` +
                    'A stranger is compared with every enrolled person, so the more people enrolled, the likelier one is named: ' +
                    'calibrate on photos of your own people, with strangers among the probes'
                : 'threshold not set: run `facerec gallery calibrate` before recognising (until then every face is "unknown")',
            );
          }
        } finally {
          progress.stop();
          await Promise.all([detector.dispose(), embedder.dispose()]);
        }
      },
    );

  program
    .command('recognize')
    .description('name every face in each image with a gallery')
    .argument('<image...>', 'JPEG, PNG or WebP files, or folders of them (searched recursively)')
    .requiredOption('--gallery <file>', 'gallery file (from facerec enroll)')
    .addOption(providerOption(context))
    .addOption(weightsOption('gallery'))
    .addOption(precisionOption())
    .addOption(workersOption())
    .addOption(minFaceSizeOption())
    .addOption(maxImageBytesOption())
    .addOption(maxImagePixelsOption())
    .option(
      '--json',
      'print [{ image, box, identity, distance, threshold, thresholdSource }] to stdout (an image without a face: one row, identity "no face", box and distance null; one that cannot be read: { image, error })',
    )
    .addOption(jsonLinesOption('the rows'))
    .action(
      async (
        args: string[],
        opts: ImageLimitFlags & {
          gallery: string;
          provider: string;
          weights?: string;
          precision?: EmbedderPrecision;
          workers: string;
          minFaceSize?: string;
          json?: boolean;
          jsonl?: boolean;
        },
      ) => {
        const images = await expandImageArguments('recognize', args);
        const format = rowFormat(opts);
        const limits = imageLimitsFlag('recognize', opts);
        // Checked now, not when the detector loads: a detector of another registry may take no minFaceSize.
        const detectorOptions = minFaceSizeOptions('recognize', registry, opts.minFaceSize);
        opts.gallery = galleryFile('recognize', opts.gallery);
        const gallery = await openExistingGallery(() => FileGallery.load(opts.gallery));
        const threshold = galleryThreshold(gallery, opts.gallery, registry, {
          precision: opts.precision ?? 'fp32',
        });
        await warnIfEmpty(gallery, opts.gallery);
        const { provider, workers, close } = await imageCommandProvider(
          context,
          'recognize',
          opts,
          images.length,
        );
        const { rows, emit } = rowSink<unknown>(format);
        try {
          const embedder = await loadGalleryEmbedder(context, provider, gallery, opts);
          // As enroll and verify find faces: a probe that is itself a face crop is one face, not none.
          const detector = withPrecroppedFallback(
            provider.detector(registry.defaults.detector, detectorOptions),
          );
          const crop = embedder.preprocessing.crop;
          try {
            await forEachImage(
              images,
              limits,
              async (image, decoded) => {
                const [found] = await detector.detectFaces([decoded], { crop });
                const { faces, crops } = found!;
                const vectors = await embedder.embed(crops.map((c) => c.image));
                const matches = await gallery.match(vectors, { threshold: threshold.value });
                // Printed in the images' order, whichever finished first.
                return () => {
                  faces.forEach((f, i) => {
                    const row = {
                      image,
                      box: f.box.map((v) => round(v, 1)),
                      identity: matches[i]!.identity,
                      distance: shownDistance(matches[i]!.distance, threshold.value),
                      threshold: threshold.value,
                      thresholdSource: threshold.source,
                    };
                    emit(row);
                    if (format === 'text')
                      process.stdout.write(
                        `${visibleText(image)}\t[${row.box.join(', ')}]\t${visibleText(row.identity)}\t${row.distance}\n`,
                      );
                  });
                  // One row per image at least: an image without a face says so, as the pipeline answers it.
                  if (!faces.length) {
                    emit({
                      image,
                      box: null,
                      identity: NO_FACE_RESULT,
                      distance: null,
                      threshold: threshold.value,
                      thresholdSource: threshold.source,
                    });
                    if (format === 'text') process.stdout.write(`${visibleText(image)}\tno face\n`);
                  }
                };
              },
              // As detect's and embed's: a row for an image that could not be read or decoded.
              (image, error) => emit({ image, error }),
              rowProgress(format, 'recognizing'),
              // One more image than workers in flight: one decoding while each worker runs the models.
              workers + 1,
            );
          } finally {
            await Promise.all([detector.dispose(), embedder.dispose()]);
          }
        } finally {
          await close();
        }
        if (format === 'json') process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      },
    );

  const galleryCommand = program.command('gallery').description('gallery maintenance and run-time stores');
  registerGalleryStoreCommands(galleryCommand, context);
  galleryCommand
    .command('calibrate')
    .description(
      'set the gallery threshold at a target false-accept rate, from labelled images not in the gallery (or --leave-one-out on its own examples)',
    )
    .argument(
      '[dir]',
      'labelled probes: <dir>/<identity>/*.{jpg,png,webp} (identities not enrolled count as impostors)',
    )
    .requiredOption(
      '--gallery <store>',
      'gallery to calibrate: a file (rewritten in place unless --out), or a store URL (s3://…, postgres://…; its threshold is set in place)',
    )
    .option('--out <file>', 'write the calibrated gallery file here instead (gallery files only)')
    .option('--target-far <rate>', 'target false-accept rate', '0.01')
    .option('--allow-overlap', 'calibrate even when probes are enrolled examples (same file or same pixels)')
    .option(
      '--leave-one-out',
      'no probes: each enrolled example in turn against the rest (needs identities with two or more examples; fewer pairs than probes not in the gallery, and optimistic)',
    )
    .addOption(providerOption(context))
    .addOption(weightsOption('gallery'))
    .addOption(precisionOption('the probes are embedded at; calibrate at the precision you serve at'))
    .addOption(maxImageBytesOption())
    .addOption(maxImagePixelsOption())
    .option(
      '--json',
      'print { out, threshold, precision, far, frr, genuinePairs, impostorPairs, equalErrorRate, keyPoints, warnings, overlaps, rejected: the false rejects, farthest first } to stdout',
    )
    .action(
      async (
        dir: string | undefined,
        opts: ImageLimitFlags & {
          gallery: string;
          out?: string;
          targetFar: string;
          provider: string;
          weights?: string;
          precision?: EmbedderPrecision;
          json?: boolean;
          allowOverlap?: boolean;
          leaveOneOut?: boolean;
        },
      ) => {
        if ((dir === undefined) === (opts.leaveOneOut !== true)) {
          throw new InvalidOptionsError(
            'gallery calibrate',
            dir === undefined
              ? 'give a folder of labelled probes (<dir>/<identity>/*.jpg, people not in the gallery), or --leave-one-out'
              : '--leave-one-out calibrates on the enrolled examples: give no probe folder with it',
          );
        }
        if (opts.leaveOneOut && opts.allowOverlap) {
          throw new InvalidOptionsError(
            'gallery calibrate',
            '--allow-overlap is for probes that are enrolled examples; --leave-one-out has no probes',
          );
        }
        if (opts.leaveOneOut && opts.precision === 'int8') {
          throw new InvalidOptionsError(
            'gallery calibrate',
            '--leave-one-out calibrates on the enrolled embeddings, made at fp32: --precision int8 needs probes embedded at int8',
          );
        }
        const targetFar = numberFlag('gallery calibrate', '--target-far', opts.targetFar, {
          above: 0,
          below: 1,
        })!;
        const decodeLimits = imageLimitsFlag('gallery calibrate', opts);
        // A store (S3, Postgres): calibrated on a snapshot of it, its threshold then set in place.
        const storeUrl = /^(s3|postgres|postgresql):\/\//i.test(opts.gallery) ? opts.gallery : undefined;
        if (storeUrl && opts.out) {
          throw new InvalidOptionsError(
            'gallery calibrate',
            "--out is for gallery files; a store's threshold is set in the store itself",
          );
        }
        if (!storeUrl) opts.gallery = galleryFile('gallery calibrate', opts.gallery);
        if (opts.out) {
          opts.out = galleryFile('gallery calibrate', opts.out, '--out');
          await checkGalleryOut('gallery calibrate', opts.out);
        }
        // A store is read once for its snapshot and opened again to set the threshold (probes take minutes).
        const openStore = (url: string) => openExistingGallery(() => openCliGalleryStore(url), url);
        let where = opts.gallery;
        let gallery: FileGallery;
        if (storeUrl) {
          const store = await openStore(storeUrl);
          // Named by its location: a database URL there has its password removed.
          where = store.location;
          try {
            gallery = await storeSnapshot(store);
          } finally {
            await store.close();
          }
        } else gallery = await openExistingGallery(() => FileGallery.load(opts.gallery));
        const calibrated = dir
          ? await calibrateOnProbes(context, gallery, dir, { ...opts, targetFar, decodeLimits })
          : { result: leaveOneOut(gallery, targetFar), probes: [] };
        const { result, probes } = calibrated;
        if (storeUrl) {
          const store = await openStore(storeUrl);
          try {
            // Refused when the store was replaced by one for another embedder meanwhile.
            store.assertCompatible(gallery.embedder);
            if (!store.setThreshold) {
              throw new InvalidOptionsError(
                'gallery calibrate',
                `${store.location}: this store cannot set a threshold`,
              );
            }
            await store.setThreshold(result.gallery.threshold, result.calibration);
          } finally {
            await store.close();
          }
        } else if (opts.out) await result.gallery.save(opts.out);
        else {
          // In place: the threshold is written under the file store's lock into the file as it is now, so people
          // added while the probes were embedded (`gallery add`, serve's collections API) are kept, and a
          // server reloading the file matches at the new threshold.
          const store = await FileGalleryStore.open(opts.gallery, {
            embedder: gallery.embedder,
            create: false,
          });
          try {
            // A threshold is a distance in one metric, chosen for one aggregation: a file enrolled again
            // meanwhile with others does not get it.
            if (store.metric !== gallery.metric || store.aggregation !== gallery.aggregation) {
              throw new InvalidOptionsError(
                'gallery calibrate',
                `${opts.gallery} changed while calibrating (now ${store.metric}, ${store.aggregation}; calibrated ` +
                  `for ${gallery.metric}, ${gallery.aggregation}): nothing written; run it again`,
              );
            }
            await store.setThreshold(result.gallery.threshold, result.calibration);
          } finally {
            await store.close();
          }
        }
        if (opts.json) {
          const { calibration } = result;
          const summary = {
            out: opts.out ?? where,
            threshold: result.point.threshold,
            precision: calibration.precision ?? null,
            far: calibration.achievedFar,
            frr: calibration.achievedFrr,
            genuinePairs: calibration.genuinePairs,
            impostorPairs: calibration.impostorPairs,
            equalErrorRate: calibration.equalErrorRate,
            keyPoints: calibration.keyPoints,
            warnings: result.warnings,
            overlaps: result.overlaps.map((o) => ({
              probe: probes[o.probe]!.source,
              kind: o.kind,
              enrolled: o.enrolled.source,
            })),
            rejected: result.rejected,
          };
          process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        } else {
          // The report on stdout, its warnings with the other diagnostics on stderr.
          process.stdout.write(`${formatCalibration({ calibration: result.calibration, warnings: [] })}\n`);
          for (const warning of result.warnings) info(`warning: ${warning}`);
        }
        info(`threshold ${shownThreshold(result.point.threshold)} saved to ${opts.out ?? where}`);
      },
    );

  galleryCommand
    .command('copy')
    .description(
      'copy a gallery whole into a new gallery file or Postgres collection (a file gallery moved to Postgres as it grows): examples, embedder, metric, threshold and calibration',
    )
    .argument('<from>', 'the gallery: a file or a store URL (s3://…, postgres://…)')
    .argument(
      '<to>',
      'a new gallery file, or a postgres:// collection that does not exist yet (an S3 gallery is a gallery file: copy a file there)',
    )
    .option('--json', 'print { from, to, modelId, identities, examples, threshold, calibrated } to stdout')
    .action(async (from: string, to: string, opts: { json?: boolean }) => {
      const toPostgres = /^postgres(ql)?:\/\//i.test(to);
      if (/^s3:\/\//i.test(to)) {
        throw new InvalidOptionsError(
          'gallery copy',
          'an S3 gallery is a gallery file: copy to a file, then upload it (aws s3 cp g.json s3://bucket/key)',
        );
      }
      const file = toPostgres ? undefined : galleryFile('gallery copy', to, '<to>');
      // Nothing is merged: a destination that exists is refused before the source is read (100,000 examples
      // take seconds to read).
      if (file && existsSync(file)) {
        throw new InvalidOptionsError(
          'gallery copy',
          `${file} exists: copy into a new file (nothing is merged)`,
        );
      }
      if (!file) {
        const existing = await openCliGalleryStore(to).catch((error: unknown) => {
          if (GalleryStoreNotFoundError.isInstance(error)) return undefined;
          throw error;
        });
        if (existing) {
          await existing.close();
          throw new InvalidOptionsError(
            'gallery copy',
            `${existing.location} exists: copy into a new collection (nothing is merged), or remove it first ` +
              `(\`facerec gallery remove '${to}' --collection\`)`,
          );
        }
      }
      const source = await openExistingGallery(() => openCliGalleryStore(from), from);
      let gallery: FileGallery;
      try {
        gallery = await storeSnapshot(source, 'gallery copy');
      } finally {
        await source.close();
      }
      let where: string;
      if (file) {
        await gallery.save(file);
        where = file;
      } else {
        if (gallery.aggregation !== 'nearest') {
          throw new InvalidOptionsError(
            'gallery copy',
            `a Postgres collection matches by each identity's nearest example; ${source.location} aggregates by ${gallery.aggregation}`,
          );
        }
        // Names a database refuses (a gallery file written before the rules: " amy ") are all named before the
        // copy starts, rather than the first one failing it.
        const refused = gallery.names.flatMap((name) => {
          const issue = identityNameIssue(name);
          if (issue) return [`${JSON.stringify(name.slice(0, 80))} ${issue}`];
          const reserved = reservedIdentityIssue(name);
          return reserved ? [reserved] : [];
        });
        if (refused.length) {
          throw new InvalidInputError(
            `gallery copy: ${count(refused.length, 'identity name', 'identity names')} of ${source.location} cannot be ` +
              `stored: ${refused.slice(0, 5).join('; ')}${refused.length > 5 ? '; …' : ''}. Rename them in the gallery ` +
              'file (JSON), or remove them (facerec gallery remove <file> --identity <name>), and copy again',
          );
        }
        const { createCollectionFromUrl } = await importOptionalPackage<{
          createCollectionFromUrl: (
            url: string,
            gallery: FileGallery,
            options: {
              onProgress: (done: number, total: number) => void;
              onIndexing: () => void;
              signal: AbortSignal;
            },
          ) => Promise<GalleryStore>;
        }>('@facerec/gallery-postgres', (name) => import(name), 'gallery copy', 'the postgres:// store');
        const progress = countProgress('copying');
        const onProgress = progress.onCount;
        // Ctrl-C or SIGTERM: the copy is one transaction, rolled back when stopped, so nothing is left; a second
        // one stops at once (the server rolls back the transaction of a connection that went away).
        const stop = new AbortController();
        const onSignal = () => {
          if (stop.signal.aborted) process.exit(130);
          progress.stop();
          info('gallery copy: stopping; nothing is kept (Ctrl-C again stops at once)');
          stop.abort(
            new FacerecError('INTERRUPTED', 'gallery copy: stopped (interrupted); nothing was copied'),
          );
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        // The index build after the rows shows no count (minutes for 100,000 examples on a small server): said
        // when it starts, then its time every 30 s, so that it is not taken for a hang.
        let indexing: NodeJS.Timeout | undefined;
        const onIndexing = () => {
          progress.stop();
          const started = performance.now();
          info(`  building the search index (HNSW) over ${count(gallery.exampleCount, 'example')}…`);
          indexing = setInterval(
            () => info(`  building the search index: ${Math.round((performance.now() - started) / 1000)} s`),
            INDEXING_REPORT_MS,
          ).unref();
        };
        try {
          const store = await createCollectionFromUrl(to, gallery, {
            onProgress,
            onIndexing,
            signal: stop.signal,
          });
          where = store.location;
          await store.close();
        } finally {
          clearInterval(indexing);
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          progress.stop();
        }
      }
      const summary = {
        from: source.location,
        to: where,
        modelId: gallery.embedder.modelId,
        identities: gallery.names.length,
        examples: gallery.exampleCount,
        threshold: gallery.threshold,
        calibrated: gallery.isCalibrated,
      };
      if (opts.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      info(
        `copied ${count(summary.examples, 'example')} of ${count(summary.identities, 'identity', 'identities')} ` +
          `from ${summary.from} to ${where} (${summary.modelId}, ` +
          `${summary.calibrated ? `threshold ${summary.threshold}, calibrated` : summary.threshold > 0 ? `threshold ${summary.threshold}` : 'never calibrated'})`,
      );
    });
}

/** `gallery calibrate --leave-one-out`: the library's calibration, its refusals said as the command's. */
function leaveOneOut(gallery: FileGallery, targetFar: number): CalibrationResult {
  // Its work grows with the square of the gallery: said as it goes where it takes more than a second or two.
  const progress =
    gallery.exampleCount >= LEAVE_ONE_OUT_PROGRESS_FROM ? countProgress('calibrating') : undefined;
  try {
    return asCommand('gallery calibrate --leave-one-out', 'calibrateThresholdLeaveOneOut', () =>
      calibrateThresholdLeaveOneOut(gallery, {
        targetFar,
        precision: 'fp32',
        ...(progress ? { onProgress: progress.onCount } : {}),
      }),
    );
  } finally {
    progress?.stop();
  }
}

/**
 * Runs a library function whose refusals (`InvalidInputError`) name it (`calibrateThreshold: …`), saying them as
 * `command`'s: a user of the CLI never called the function.
 */
function asCommand<T>(command: string, library: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (!InvalidInputError.isInstance(error)) throw error;
    throw new InvalidInputError(`${command}: ${error.message.replace(new RegExp(`^${library}: `), '')}`, {
      cause: error,
    });
  }
}

/**
 * A store's examples as an in-memory gallery, to calibrate on or copy (`GalleryStore.snapshot`): a snapshot
 * store's (file, S3) current version, or a Postgres collection read whole.
 */
async function storeSnapshot(store: GalleryStore, command = 'gallery calibrate'): Promise<FileGallery> {
  if (store.snapshot) return store.snapshot();
  throw new InvalidOptionsError(
    command,
    `${store.location}: this store cannot be read whole (its GalleryStore has no snapshot())`,
  );
}
