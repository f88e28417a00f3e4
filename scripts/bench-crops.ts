// `npm run bench -- crops` (or `npx tsx scripts/bench-crops.ts [--embedder ID ...]`): recognition quality per
// embedder × crop policy on the labelled photos of ../shared/faces (scripts/labelled-faces.ts), with face-api.js's
// own pipeline (@vladmandic/face-api on tfjs + the wasm backend: its SSD MobileNet detector, its 68 landmarks, its
// crop, the same recognition net) as the anchor row. Prints a Markdown table (the README's "Recognition" table).
//
// Every pipeline sees every photo and compares the largest face it finds in each:
// - faces found: photos in which it finds a face;
// - identification: nearest neighbour, leave-one-out — each photo whose person has another photo in the set is
//   matched against all the others, and counts as right when the nearest is the same person (no face: wrong);
// - AUC and accuracy over all pairs of photos (a photo without a face is never the same person as another);
//   accuracy at the shipped threshold: the registry's Euclidean threshold for facerec (measured on the default
//   policy by scripts/measure-thresholds.ts), face-api.js's own 0.6 on its raw descriptors for face-api.js;
// - mean Euclidean distance of same-person and different-person pairs between unit vectors, over the photos
//   face-api.js finds (so every row averages the same pairs; face-api.js's raw descriptors, |d| ≈ 1.4–1.6, are
//   normalised too, raw values in brackets);
// - cosine to face-api.js: mean cosine between facerec's embedding of a photo and face-api.js's descriptor of it,
//   over photos both find — 1.000 means facerec cut the crop face-api.js cuts.
// facerec's detection is its default path: MTCNN with the pre-cropped fallback, as createFaceRecognizer runs it.
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type * as FaceApi from '@vladmandic/face-api';
import { dot } from '../packages/framework/src/gallery/vectors.js';
import {
  type Box,
  boxArea,
  type CropPolicy,
  type CropShape,
  decodeImage,
  distanceFromDot,
  type EmbedderDescription,
  extractFace,
  type FaceDetection,
  type FaceEmbedder,
  loadManifest,
  MODELS,
  ModelStore,
  normaliseInto,
  type RgbImage,
  withPrecroppedFallback,
} from '../packages/framework/src/internal.js';
import { createOnnxProvider } from '../packages/provider-onnx/src/index.js';
import { selectBackend } from '../packages/provider-tfjs/src/index.js';
import { sharedDir } from './bench-common.js';
import {
  areaUnderCurve,
  finiteMean,
  type LabelledPhoto,
  loadLabelledPhotos,
  pairDistances,
} from './labelled-faces.js';

const { values } = parseArgs({ options: { embedder: { type: 'string', multiple: true } } });
const embedderIds = values.embedder ?? [...MODELS.embedderIds];
process.env.FACEREC_MODELS_MIRROR ??= path.join(sharedDir, 'models', 'upstream');

const { photos, duplicates } = await loadLabelledPhotos();
const identities = photos.map((p) => p.identity);
const images: RgbImage[] = await Promise.all(photos.map((p) => decodeImage(p.bytes)));

/** One pipeline's answer per photo: the largest face's vector (unit length), or undefined when none was found. */
type Vectors = (Float32Array | undefined)[];

interface Row {
  readonly pipeline: string;
  readonly crop: string;
  readonly found: number;
  readonly identified: number;
  readonly probes: number;
  readonly auc: number;
  readonly accuracy: number;
  readonly threshold: string;
  readonly meanSame: number;
  readonly meanDifferent: number;
  readonly rawMeans?: readonly [number, number];
  readonly cosineToFaceApi?: number;
}

const unitDistance = (vectors: Vectors) => (i: number, j: number) => {
  const a = vectors[i];
  const b = vectors[j];
  return a && b ? distanceFromDot('euclidean', dot(a, b)) : Number.POSITIVE_INFINITY;
};

/** Leave-one-out nearest neighbour: how many of the photos whose person has another photo are named right. */
function identification(distance: (i: number, j: number) => number): { identified: number; probes: number } {
  let identified = 0;
  let probes = 0;
  identities.forEach((identity, i) => {
    if (identities.filter((other) => other === identity).length < 2) return;
    probes++;
    let best = -1;
    let bestDistance = Number.POSITIVE_INFINITY;
    identities.forEach((_, j) => {
      const d = j === i ? Number.POSITIVE_INFINITY : distance(i, j);
      if (d < bestDistance) [best, bestDistance] = [j, d];
    });
    if (best >= 0 && identities[best] === identity) identified++;
  });
  return { identified, probes };
}

/** The table's columns for one pipeline: `decide` is its own distance and threshold (raw for face-api.js). */
function evaluate(
  pipeline: string,
  crop: string,
  vectors: Vectors,
  decide: { distance: (i: number, j: number) => number; threshold: number; label: string },
): Omit<Row, 'rawMeans' | 'cosineToFaceApi'> {
  const unit = pairDistances(identities, unitDistance(vectors));
  const own = pairDistances(identities, decide.distance);
  // Only photos face-api.js also finds, so that every row's means are over the same pairs.
  const common = pairDistances(
    identities,
    unitDistance(vectors.map((v, i) => (faceApiUnit[i] ? v : undefined))),
  );
  const accepted = (ds: readonly number[]) => ds.filter((d) => d <= decide.threshold).length;
  const correct = accepted(own.genuine) + own.impostor.length - accepted(own.impostor);
  return {
    pipeline,
    crop,
    found: vectors.filter(Boolean).length,
    ...identification(unitDistance(vectors)),
    auc: areaUnderCurve(unit.genuine, unit.impostor),
    accuracy: correct / (own.genuine.length + own.impostor.length),
    threshold: decide.label,
    meanSame: finiteMean(common.genuine),
    meanDifferent: finiteMean(common.impostor),
  };
}

const unitCopy = (v: Float32Array) => {
  const out = new Float32Array(v.length);
  normaliseInto(v, out);
  return out;
};
/** The face with the largest box (`box` as `[x1, y1, x2, y2]`), or undefined for none. */
const largest = <T extends Pick<FaceDetection, 'box'>>(found: readonly T[]): T | undefined =>
  found.reduce<T | undefined>((best, f) => (best && boxArea(best) >= boxArea(f) ? best : f), undefined);

// ---- face-api.js's own pipeline -------------------------------------------------------------------------------
// face-api.js's Node build for the wasm backend needs `@tensorflow/tfjs` and `@tensorflow/tfjs-backend-wasm`; the
// provider-tfjs helper points the wasm backend at its binaries and makes it the active one.
await selectBackend({ backend: 'wasm', logger: () => {} });
const faceapi = createRequire(import.meta.url)(
  '@vladmandic/face-api/dist/face-api.node-wasm.js',
) as typeof FaceApi;
const faceApiModels = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')),
  'model',
);
await faceapi.nets.ssdMobilenetv1.loadFromDisk(faceApiModels);
await faceapi.nets.faceLandmark68Net.loadFromDisk(faceApiModels);
await faceapi.nets.faceRecognitionNet.loadFromDisk(faceApiModels);
const faceApiRaw: Vectors = [];
for (const image of images) {
  const tensor = faceapi.tf.tensor3d(image.data, [image.height, image.width, 3], 'int32');
  const found = await faceapi
    .detectAllFaces(tensor, new faceapi.SsdMobilenetv1Options())
    .withFaceLandmarks()
    .withFaceDescriptors();
  tensor.dispose();
  const best = largest(
    found.map((f) => ({
      box: [f.detection.box.left, f.detection.box.top, f.detection.box.right, f.detection.box.bottom] as Box,
      descriptor: f.descriptor,
    })),
  );
  faceApiRaw.push(best?.descriptor);
}
// FaceMatcher's default distance threshold: face-api.js's own "same person" cut on raw descriptors.
const faceApiThreshold = new faceapi.FaceMatcher([
  new faceapi.LabeledFaceDescriptors('x', [new Float32Array(128).fill(1)]),
]).distanceThreshold;
const faceApiUnit: Vectors = faceApiRaw.map((v) => v && unitCopy(v));
const rawDistance = (i: number, j: number) => {
  const a = faceApiRaw[i];
  const b = faceApiRaw[j];
  return a && b ? faceapi.euclideanDistance(a, b) : Number.POSITIVE_INFINITY;
};
const raw = pairDistances(identities, rawDistance);
const rows: Row[] = [
  {
    ...evaluate("face-api.js's own (SSD MobileNet + 68 landmarks)", 'its own', faceApiUnit, {
      distance: rawDistance,
      threshold: faceApiThreshold,
      label: `${faceApiThreshold} (raw)`,
    }),
    rawMeans: [finiteMean(raw.genuine), finiteMean(raw.impostor)],
  },
];

// ---- facerec, per embedder × crop policy ----------------------------------------------------------------------
/** The policies measured for an embedder: its default first, then every shape at the embedder's input size. */
function policies(description: EmbedderDescription): CropPolicy[] {
  const fallback = description.preprocessing.crop;
  const size = fallback.size;
  // dlib's chips pad its template by a quarter on each side: the template fills two thirds of the crop.
  const margins: Record<CropShape, number> = {
    box: 0,
    square: 0,
    'eyes-mouth': 0,
    aligned: Math.round(size.width / 3),
  };
  const shapes = (['box', 'square', 'eyes-mouth', 'aligned'] as const).filter(
    (shape) => shape !== fallback.shape,
  );
  return [fallback, ...shapes.map((shape) => ({ size, shape, margin: margins[shape] }))];
}

const store = ModelStore.fromEnv(await loadManifest());
const provider = createOnnxProvider({ modelStore: store });
const detector = withPrecroppedFallback(provider.detector('mtcnn'));
const faces: (FaceDetection | undefined)[] = [];
for (const image of images) faces.push(largest(await detector.detect(image)));
await detector.dispose();

const skipped: string[] = [];
for (const id of embedderIds) {
  let embedder: FaceEmbedder;
  try {
    embedder = await provider.embedder(id);
  } catch (error) {
    skipped.push(`${id}: not measured — ${(error as Error).message.split('\n')[0]}`);
    continue;
  }
  const description = MODELS.embedder(id);
  const threshold = description.thresholds.euclidean?.value;
  for (const [k, crop] of policies(description).entries()) {
    const kept = faces.flatMap((face, i) =>
      face ? [{ i, image: extractFace(images[i]!, face, crop).image }] : [],
    );
    const embedded = await embedder.embed(kept.map((k) => k.image));
    const vectors: Vectors = faces.map(() => undefined);
    kept.forEach(({ i }, n) => {
      vectors[i] = embedded[n];
    });
    const both = vectors.flatMap((v, i) => (v && faceApiUnit[i] ? [dot(v, faceApiUnit[i]!)] : []));
    rows.push({
      ...evaluate(
        `facerec, ${embedder.modelId}`,
        `${crop.shape}${crop.margin ? `, margin ${crop.margin}` : ''}${k === 0 ? ' (default)' : ''}`,
        vectors,
        {
          distance: unitDistance(vectors),
          threshold: threshold ?? Number.NEGATIVE_INFINITY,
          label: threshold === undefined ? 'none shipped' : String(threshold),
        },
      ),
      cosineToFaceApi: id === 'faceapi-resnet' ? finiteMean(both) : undefined,
    });
  }
  await embedder.dispose();
}

// ---- the table ------------------------------------------------------------------------------------------------
const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
const n = photos.length;
const pairs = (n * (n - 1)) / 2;
console.log(
  `crop policies vs face-api.js — ${n} labelled photos of ${new Set(identities).size} people under ` +
    `${path.relative(process.cwd(), sharedDir).startsWith('..') ? path.resolve(sharedDir) : path.relative(process.cwd(), sharedDir) || '.'}/faces (${duplicates} duplicate files dropped), ` +
    `${pairs} pairs\n`,
);
console.log(
  '| pipeline | crop | faces found | identification (1-NN, leave-one-out) | AUC | accuracy at shipped threshold ' +
    '| mean distance same / different | cosine to face-api.js |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const means =
    `${r.meanSame.toFixed(2)} / ${r.meanDifferent.toFixed(2)}` +
    (r.rawMeans ? ` (raw ${r.rawMeans[0].toFixed(2)} / ${r.rawMeans[1].toFixed(2)})` : '');
  console.log(
    `| ${r.pipeline} | ${r.crop} | ${r.found}/${n} | ${pct(r.identified / r.probes)} (${r.identified}/${r.probes}) ` +
      `| ${r.auc.toFixed(4)} | ${pct(r.accuracy)} at ${r.threshold} | ${means} ` +
      `| ${r.cosineToFaceApi === undefined ? '—' : r.cosineToFaceApi.toFixed(3)} |`,
  );
}
for (const line of skipped) console.log(`\n${line}`);
const missed = photos.filter((_, i) => !faceApiRaw[i] && faces[i]).map((p: LabelledPhoto) => p.file);
console.log(
  `\nfaces facerec (MTCNN) finds and face-api.js's SSD misses: ${missed.length}` +
    (missed.length ? ` (${missed.map((f) => path.basename(f)).join(', ')})` : ''),
);
