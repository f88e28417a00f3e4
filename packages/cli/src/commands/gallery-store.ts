import {
  type AddedExample,
  addFacesFromPhotos,
  type EmbedderPrecision,
  embedderDescriptionFor,
  type FaceEmbedder,
  type GalleryStore,
  type GalleryStoreLogger,
  GalleryStoreNotFoundError,
  InvalidInputError,
  InvalidOptionsError,
  type LookAlike,
  NO_FACE_RESULT,
  type OpenGalleryStoreOptions,
  openGalleryStore,
  UnknownExampleError,
  UnknownIdentityError,
  withPrecroppedFallback,
} from '@facerec/framework';
import { checkIdentityName, storableSource, visibleText } from '@facerec/framework/internal';
import { type Command, Option } from 'commander';
import {
  decodeInput,
  expandImageArguments,
  forEachImage,
  type ImageLimitFlags,
  imageLimitsFlag,
  maxImageBytesOption,
  maxImagePixelsOption,
} from '../images.js';
import {
  count,
  galleryThreshold,
  imageProgress,
  info,
  jsonLinesOption,
  openExistingGallery,
  positiveInteger,
  round,
  rowFormat,
  rowProgress,
  rowSink,
  shownDistance,
  storedThreshold,
  thresholdFields,
  thresholdFlag,
  thresholdSummary,
  warnIfEmpty,
} from '../output.js';
import {
  type CliContext,
  embedderOption,
  loadEmbedder,
  loadGalleryEmbedder,
  precisionOption,
  providerOption,
  selectProvider,
  weightsOption,
} from '../providers.js';
import { minFaceSizeOption, minFaceSizeOptions } from './detect.js';

/** Where an `s3://` store's server is, when it is not AWS S3 (MinIO, s3rver); the Lambda runtime reads it too. */
const S3_ENDPOINT_ENV = 'FACEREC_S3_ENDPOINT';
/** Set to 1: write to an S3-compatible server that ignores conditional writes (stock s3rver; one writer only). */
const S3_UNCONDITIONAL_ENV = 'FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES';

const STORE_HELP =
  'gallery store: a file path (or file: URL), s3://bucket/key (endpoint from $FACEREC_S3_ENDPOINT), or ' +
  'postgres://user:password@host/db?collection=name';

/**
 * What a store says while a one-shot command uses it (`serve` passes its own logger): its warnings, as stderr
 * lines, naming the store (a change waiting for another writer's lock on a gallery file, which can last 10 s,
 * would otherwise be an unexplained pause); its information lines are for a server's log.
 */
const STDERR_WARNINGS: GalleryStoreLogger = {
  info: () => undefined,
  warn: (message, ...details) => {
    const fields = Object.assign({}, ...details) as Record<string, unknown>;
    const { location, ...rest } = fields;
    // The plain details (a reason, what changed), as a log line would carry them.
    const said = Object.entries(rest)
      .filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))
      .map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`);
    info(
      `warning: ${typeof location === 'string' ? `${location}: ` : ''}${message}${said.length ? ` (${said.join('; ')})` : ''}`,
    );
  },
};

/** Whether this process said already that S3 writes are unconditional (said once, not at every open). */
let unconditionalSaid = false;

/**
 * Opens a store by URL for the CLI (every command, `serve` included), with the S3 endpoint of
 * `$FACEREC_S3_ENDPOINT` when it is set, and `$FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES`.
 */
export function openCliGalleryStore(
  url: string,
  options: OpenGalleryStoreOptions = {},
): Promise<GalleryStore> {
  const endpoint = process.env[S3_ENDPOINT_ENV];
  if (endpoint && !/^https?:\/\/[^/\s]+/i.test(endpoint)) {
    throw new InvalidOptionsError(
      'gallery store',
      `$${S3_ENDPOINT_ENV} must be an http:// or https:// URL (e.g. http://127.0.0.1:9000), got ${JSON.stringify(endpoint.slice(0, 100))}`,
    );
  }
  const unconditional = process.env[S3_UNCONDITIONAL_ENV];
  if (unconditional && !['1', '0', 'true', 'false'].includes(unconditional)) {
    throw new InvalidOptionsError(
      'gallery store',
      `$${S3_UNCONDITIONAL_ENV} must be 1 or 0 (true or false), got ${JSON.stringify(unconditional.slice(0, 100))}`,
    );
  }
  const allowUnconditional = unconditional === '1' || unconditional === 'true';
  // Opted into, but it is how a change gets lost: said every time it is in force.
  if (allowUnconditional && /^s3:/i.test(url) && !unconditionalSaid) {
    unconditionalSaid = true;
    info(
      `warning: $${S3_UNCONDITIONAL_ENV} is set: writes to ${url} are not checked against another writer's, so ` +
        'of two changes made at once one can be lost',
    );
  }
  return openGalleryStore(url, {
    logger: STDERR_WARNINGS,
    ...options,
    ...(endpoint ? { s3Endpoint: endpoint } : {}),
    ...(allowUnconditional ? { s3AllowUnconditionalWrites: true } : {}),
  });
}

/** Opens an existing store for list, search and remove; a missing one is named with how to create it. */
const openExisting = (url: string): Promise<GalleryStore> =>
  openExistingGallery(() => openCliGalleryStore(url), url);

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

/**
 * `facerec gallery add|remove|list|search`: people managed at run time in any store (a file, an S3 object, a
 * Postgres collection), under the `gallery` command.
 */
export function registerGalleryStoreCommands(gallery: Command, context: CliContext): void {
  const { registry } = context;

  gallery
    .command('add')
    .description(
      'add photos of one person to a store (created for --embedder when missing): detect the face, cut it as the embedder takes it, embed, add',
    )
    .argument('<store>', STORE_HELP)
    .argument('<identity>', 'the person')
    .argument('<image...>', 'JPEG, PNG or WebP files, one face each, or folders of them')
    .addOption(embedderOption(context, 'embedder of a new store (an existing store uses its own)'))
    .addOption(weightsOption('embedder'))
    .addOption(providerOption(context))
    .addOption(new Option('--metric <m>', 'distance of a new store').choices(['euclidean', 'cosine']))
    .option('--threshold <t>', 'threshold of a new store')
    .option('--largest', 'take the largest face of a photo with several (default: refuse the photo)')
    .addOption(maxImageBytesOption())
    .addOption(maxImagePixelsOption())
    .option(
      '--json',
      'print { store, identity, created, added: [{ id, source }], alreadyThere: [{ id, source }], repeated, lookAlikes: [{ source, identity, distance }] } to stdout',
    )
    .action(
      async (
        url: string,
        identity: string,
        images: string[],
        opts: ImageLimitFlags & {
          embedder: string;
          weights?: string;
          provider: string;
          metric?: 'euclidean' | 'cosine';
          threshold?: string;
          largest?: boolean;
          json?: boolean;
        },
        command: Command,
      ) => {
        // Stored in NFC, as enrollment stores folder names: one person, one spelling.
        identity = identity.normalize('NFC');
        // Before anything is loaded, and named as the command (not the library function that checks it too).
        checkIdentityName('gallery add', identity);
        const threshold = thresholdFlag('gallery add', opts.threshold);
        const limits = imageLimitsFlag('gallery add', opts);
        // Read one at a time when their turn comes (a folder may hold more photos than memory would).
        const files = await expandImageArguments('gallery add', images);
        // A path is the example's source, as stores take it (storableSource): a longer one keeps its end, one
        // with control characters holds them escaped, rather than refusing the photo.
        const photos = files.map((file) => ({
          photo: () => decodeInput(file, limits),
          source: storableSource(file),
        }));
        const provider = await selectProvider(context, opts.provider);
        let store: GalleryStore | undefined;
        let embedder: FaceEmbedder | undefined;
        let created = false;
        let existing = new Set<string>();
        try {
          try {
            store = await openCliGalleryStore(url);
            const named = command.getOptionValueSource('embedder') === 'cli';
            // An embedder named on the command line must be the store's: refused before loading it (a model
            // that is not installed would otherwise fail first, with a download error).
            const stores = embedderDescriptionFor(registry, store.embedder.modelId)?.id;
            if (named && stores !== undefined && stores !== opts.embedder) {
              throw new InvalidOptionsError(
                'gallery add',
                `${store.location} holds ${store.embedder.modelId} embeddings; --embedder ${opts.embedder} ` +
                  'cannot add to it (leave --embedder out: an existing store uses its own)',
              );
            }
            const ignored = [
              ...(opts.metric ? ['--metric'] : []),
              ...(threshold !== undefined ? ['--threshold'] : []),
            ];
            if (ignored.length) {
              // What the store keeps, for the flags given only.
              const kept = [
                ...(opts.metric ? [`its metric (${store.metric})`] : []),
                ...(threshold !== undefined
                  ? [
                      `its threshold (${thresholdSummary(store, registry)}; \`facerec gallery calibrate <photos> --gallery <store>\` sets one from labelled photos)`,
                    ]
                  : []),
              ];
              info(
                `warning: ${ignored.join(' and ')} ${ignored.length > 1 ? 'apply' : 'applies'} to a new store only: ${store.location} keeps ${kept.join(' and ')}`,
              );
            }
            if (named) {
              embedder = await loadEmbedder(context, provider, opts.embedder, { weights: opts.weights });
              store.assertCompatible(embedder);
            } else embedder = await loadGalleryEmbedder(context, provider, store, { weights: opts.weights });
            existing = new Set((await store.list({ identity })).map((e) => e.id));
          } catch (error) {
            if (!GalleryStoreNotFoundError.isInstance(error)) throw error;
            embedder = await loadEmbedder(context, provider, opts.embedder, { weights: opts.weights });
          }
          const forEmbedder = embedder;
          // A missing store is created only once every photo has yielded its face: a failed add leaves nothing.
          const target: Pick<GalleryStore, 'add' | 'assertCompatible'> = store ?? {
            assertCompatible: () => undefined,
            add: async (name, examples) => {
              store = await openCliGalleryStore(url, {
                embedder: forEmbedder,
                create: true,
                ...(opts.metric ? { metric: opts.metric } : {}),
                ...(threshold !== undefined ? { threshold } : {}),
              });
              // Another process may have created it first: then its settings stand, and this run says so.
              created = store.created ?? true;
              if (!created) {
                store.assertCompatible(forEmbedder);
                const differs =
                  (opts.metric !== undefined && opts.metric !== store.metric) ||
                  (threshold !== undefined && threshold !== store.threshold);
                if (differs) {
                  info(
                    `warning: ${store.location} was created meanwhile by another process (${store.metric}, threshold ` +
                      `${store.threshold}); --metric and --threshold apply to a new store only`,
                  );
                }
              }
              return store.add(name, examples);
            },
          };
          const detector = provider.detector(registry.defaults.detector);
          // An existing store is asked first whether it already recognises a face as someone else, at the
          // threshold recognition would apply.
          const recognisedAt = store && storedThreshold(store, registry)?.value;
          let lookAlikes: readonly LookAlike[] = [];
          const shown = photos.length > 1 ? imageProgress('photos') : undefined;
          try {
            const stored = await addFacesFromPhotos(target, {
              identity,
              photos,
              detector,
              embedder,
              multipleFaces: opts.largest ? 'largest' : 'reject',
              ...(shown ? { onProgress: (e) => shown.onProgress({ ...e, file: e.source }) } : {}),
              ...(recognisedAt
                ? { lookAlikes: { threshold: recognisedAt, onFound: (found) => (lookAlikes = found) } }
                : {}),
            });
            // The bar ends its line before the results are printed.
            shown?.stop();
            // Whether this call stored each (another process adding the same photo at the same moment may
            // have been first); a store without `added` is judged by what it held before.
            const isNew = (e: AddedExample) => e.added ?? !existing.has(e.id);
            const added = stored.filter(isNew);
            const unchanged = stored.length - added.length;
            // Photos whose face is the same embedding as another photo's in this call (a copy) count once.
            const repeated = photos.length - stored.length;
            const location = store!.location;
            if (opts.json) {
              print({
                store: location,
                identity,
                created,
                added: added.map(({ id, source }) => ({ id, source })),
                alreadyThere: stored.filter((e) => !isNew(e)).map(({ id, source }) => ({ id, source })),
                repeated,
                lookAlikes: lookAlikes.map((l) => ({
                  ...l,
                  distance: shownDistance(l.distance, recognisedAt),
                })),
              });
            }
            for (const l of lookAlikes) {
              info(
                `warning: ${visibleText(l.source)}: this face is already recognised as ${visibleText(l.identity)} (distance ` +
                  `${shownDistance(l.distance, recognisedAt)} ≤ threshold ${recognisedAt}): a mislabelled photo, or one ` +
                  `person under two names? Recognition may answer either (added as ${identity})`,
              );
            }
            info(
              `${created ? 'created ' : ''}${location}: added ${count(added.length, 'example')} of ${identity}` +
                `${unchanged ? ` (${unchanged} already there, unchanged)` : ''}` +
                `${repeated ? ` (${count(repeated, 'photo')} repeated the face of another photo given, counted once)` : ''}` +
                ` (${store!.embedder.modelId})`,
            );
          } finally {
            shown?.stop();
            await detector.dispose();
          }
        } finally {
          await Promise.all([embedder?.dispose(), store?.close()]);
        }
      },
    );

  gallery
    .command('remove')
    .description(
      'remove a person (--identity), single examples (--example, ids from `gallery list`) or a whole Postgres collection (--collection)',
    )
    .argument('<store>', STORE_HELP)
    .option('--identity <name>', 'remove this identity and all its examples')
    .option('--example <id...>', 'remove these examples (all or none)')
    .option(
      '--collection',
      'remove the Postgres collection itself: its examples, settings and index (e.g. one a killed `gallery copy` left part-copied); a file or S3 gallery is removed by deleting the file or object',
    )
    .option('--json', 'print { store, removed } to stdout')
    .action(
      async (
        url: string,
        opts: { identity?: string; example?: string[]; collection?: boolean; json?: boolean },
      ) => {
        const given = [opts.identity, opts.example, opts.collection].filter((o) => o !== undefined).length;
        if (given !== 1) {
          throw new InvalidOptionsError(
            'gallery remove',
            'give exactly one of --identity, --example and --collection',
          );
        }
        const store = await openExisting(url);
        try {
          let removed: number;
          if (opts.collection) {
            const droppable = store as Partial<{ drop: () => Promise<void> }>;
            if (typeof droppable.drop !== 'function') {
              throw new InvalidOptionsError(
                'gallery remove',
                `--collection removes a Postgres collection; ${store.location} is a gallery file or object: delete it`,
              );
            }
            removed = (await store.list()).length;
            await droppable.drop();
            if (opts.json) print({ store: store.location, removed });
            info(`${store.location}: removed the collection and its ${count(removed, 'example')}`);
            return;
          }
          try {
            if (opts.identity !== undefined)
              removed = await store.removeIdentity(await storedName(store, opts.identity));
            else {
              await store.removeExamples(opts.example!);
              removed = new Set(opts.example).size;
            }
          } catch (error) {
            // Named with the store, as every other error of this command is.
            if (UnknownIdentityError.isInstance(error) || UnknownExampleError.isInstance(error)) {
              throw new InvalidInputError(`${store.location}: ${error.message.replace(/^The /, 'the ')}`, {
                cause: error,
              });
            }
            throw error;
          }
          if (opts.json) print({ store: store.location, removed });
          info(`${store.location}: removed ${count(removed, 'example')}`);
        } finally {
          await store.close();
        }
      },
    );

  gallery
    .command('list')
    .description('the examples of a store: id, identity, source')
    .argument('<store>', STORE_HELP)
    .option('--identity <name>', 'only this identity')
    .option(
      '--json',
      'print { store, modelId, weightsSha256, dimension, metric, threshold, thresholdSource, calibration, identities, examples: [{ id, identity, source }] } to stdout',
    )
    .action(async (url: string, opts: { identity?: string; json?: boolean }) => {
      const store = await openExisting(url);
      try {
        const examples = await store.list(
          opts.identity === undefined ? {} : { identity: await storedName(store, opts.identity) },
        );
        const identities = await store.identities();
        if (opts.json) {
          print({
            store: store.location,
            modelId: store.embedder.modelId,
            weightsSha256: store.embedder.weightsSha256 ?? null,
            dimension: store.embedder.dimension,
            metric: store.metric,
            // The threshold matching applies without --threshold, and where it comes from ('gallery', or
            // 'registry' for a store never calibrated), as recognize --json gives them.
            ...thresholdFields(store, registry),
            // How the threshold was chosen (method, rates, pairs, date, precision), or null when never calibrated.
            calibration: store.calibration ?? null,
            identities: identities.length,
            examples,
          });
        } else {
          for (const e of examples)
            process.stdout.write(
              `${visibleText(e.id)}\t${visibleText(e.identity)}\t${visibleText(e.source)}\n`,
            );
        }
        info(
          `${store.location}: ${count(identities.length, 'identity', 'identities')}, ${count(examples.length, 'example')} shown (${store.embedder.modelId}, ${store.metric}, ${thresholdSummary(store, registry)})`,
        );
      } finally {
        await store.close();
      }
    });

  gallery
    .command('search')
    .description('the nearest identities of every face in each image, with their distances')
    .argument('<store>', STORE_HELP)
    .argument('<image...>', 'JPEG, PNG or WebP files, or folders of them (searched recursively)')
    .option('--top-k <k>', 'candidates per face', '5')
    .option('--threshold <t>', "distance above which a face is unknown (default: the store's)")
    .addOption(providerOption(context))
    .addOption(weightsOption('gallery'))
    .addOption(precisionOption())
    .addOption(minFaceSizeOption())
    .addOption(maxImageBytesOption())
    .addOption(maxImagePixelsOption())
    .option(
      '--json',
      'print [{ image, box, identity, distance, candidates: [{ identity, distance }] }] to stdout',
    )
    .addOption(jsonLinesOption('the rows'))
    .action(
      async (
        url: string,
        args: string[],
        opts: ImageLimitFlags & {
          topK: string;
          threshold?: string;
          provider: string;
          weights?: string;
          precision?: EmbedderPrecision;
          minFaceSize?: string;
          json?: boolean;
          jsonl?: boolean;
        },
      ) => {
        const topK = positiveInteger('gallery search', '--top-k', opts.topK)!;
        const format = rowFormat(opts);
        // Checked now, not when the detector loads: a detector of another registry may take no minFaceSize.
        const detectorOptions = minFaceSizeOptions('gallery search', registry, opts.minFaceSize);
        const images = await expandImageArguments('gallery search', args);
        const threshold = thresholdFlag('gallery search', opts.threshold);
        const limits = imageLimitsFlag('gallery search', opts);
        const store = await openExisting(url);
        // As recognize: --threshold, else the store's, else (never calibrated) the registry's, said in one line.
        const applied = galleryThreshold(store, store.location, registry, {
          explicit: threshold,
          precision: opts.precision ?? 'fp32',
        }).value;
        await warnIfEmpty(store, store.location);
        const provider = await selectProvider(context, opts.provider);
        let embedder: FaceEmbedder | undefined;
        // As enroll and verify find faces: a probe that is itself a face crop is one face, not none.
        const detector = withPrecroppedFallback(
          provider.detector(registry.defaults.detector, detectorOptions),
        );
        const { rows, emit } = rowSink<unknown>(format);
        try {
          embedder = await loadGalleryEmbedder(context, provider, store, opts);
          const crop = embedder.preprocessing.crop;
          const embed = embedder;
          await forEachImage(
            images,
            limits,
            async (image, decoded) => {
              const [found] = await detector.detectFaces([decoded], { crop });
              const { faces, crops } = found!;
              const vectors = crops.length ? await embed.embed(crops.map((c) => c.image)) : [];
              const matches = await store.match(vectors, { topK, threshold: applied });
              faces.forEach((f, i) => {
                const m = matches[i]!;
                const row = {
                  image,
                  box: f.box.map((v) => round(v, 1)),
                  identity: m.identity,
                  distance: shownDistance(m.distance, applied),
                  candidates: m.candidates.map((c) => ({
                    identity: c.identity,
                    distance: shownDistance(c.distance, applied),
                  })),
                };
                emit(row);
                if (format === 'text') {
                  const others = row.candidates
                    .map((c) => `${visibleText(c.identity)} ${c.distance}`)
                    .join(', ');
                  process.stdout.write(
                    `${visibleText(image)}\t[${row.box.join(', ')}]\t${visibleText(row.identity)}\t${row.distance}\t${others}\n`,
                  );
                }
              });
              // One row per image at least, as recognize's: an image without a face says so.
              if (!faces.length) {
                emit({ image, box: null, identity: NO_FACE_RESULT, distance: null, candidates: [] });
                if (format === 'text') process.stdout.write(`${visibleText(image)}\tno face\n`);
              }
            },
            // As recognize's: a row for an image that could not be read or decoded.
            (image, error) => emit({ image, error }),
            rowProgress(format, 'searching'),
          );
        } finally {
          await Promise.all([detector.dispose(), embedder?.dispose(), store.close()]);
        }
        if (format === 'json') print(rows);
      },
    );
}

/** `name` as the store spells it: as typed when the store has it, else in NFC (how facerec stores names). */
async function storedName(store: GalleryStore, name: string): Promise<string> {
  return (await store.identities()).includes(name) ? name : name.normalize('NFC');
}
