// `npx tsx scripts/measure-thresholds.ts [--target-far 0.01] [--embedder ID ...] [--precision int8]`: measures the recommended
// verification threshold of each registered embedder — the numbers its registry entry ships
// (packages/framework/src/registry/builtin.ts, `thresholds`) — and prints them with the evidence.
//
// Data: every labelled single-person photo in ../shared/faces (or $FACEREC_SHARED_DIR/faces), files with the
// same bytes counted once — the list is in scripts/labelled-faces.ts, shared with scripts/bench-crops.ts.
//
// Method: facerec's default detection path (MTCNN with the pre-cropped fallback, as createFaceRecognizer runs it),
// the largest face of each photo cut with the embedder's own (default) crop policy, one embedding each;
// every pair of photos is a genuine pair (same identity) or an impostor pair. The ROC over those distances
// (`rocCurve` and `operatingPointAtFar` from the framework, which `facerec gallery calibrate` uses) gives the
// highest true-accept rate whose false-accept rate is at most the target (default 1 %: the data has about 1,200
// impostor pairs, so 0.1 % could not be told from 0), its threshold midway between the last accepted distance
// and the next impostor; the shipped value is that, rounded to 3 decimals. Cosine distance on unit vectors is d² / 2, so both metrics rank pairs alike.
//
// The threshold is chosen on those pairs, so the false-accept rate printed for them is in-sample. The script
// also checks it held out: every face MTCNN finds in the demo photos @vladmandic/face-api ships
// (demo/sample*.jpg: strangers to the labelled data) against every labelled photo, as impostor pairs.
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { dot } from '../packages/framework/src/gallery/vectors.js';
import {
  boxArea,
  type DistanceMetric,
  decodeImage,
  distanceFromDot,
  equalErrorRate,
  type FaceEmbedder,
  loadManifest,
  MODELS,
  ModelStore,
  operatingPointAtFar,
  rocCurve,
  withPrecroppedFallback,
} from '../packages/framework/src/internal.js';
import { createOnnxProvider } from '../packages/provider-onnx/src/index.js';
import { sharedDir } from './bench-common.js';
import {
  areaUnderCurve,
  type LabelledPhoto,
  loadLabelledPhotos,
  relativeToFaces,
  testImage,
} from './labelled-faces.js';

const { values } = parseArgs({
  options: {
    'target-far': { type: 'string', default: '0.01' },
    embedder: { type: 'string', multiple: true },
    // int8: the onnx provider's int8 graph (faceapi-resnet's shipped ranges, or FACEREC_CALIBRATION_DIR's faces), to measure its cost.
    precision: { type: 'string' },
  },
});
const targetFar = Number(values['target-far']);
if (!(targetFar > 0 && targetFar < 1))
  throw new Error(`--target-far must be in (0, 1), got ${values['target-far']}`);
const embedderIds = values.embedder ?? [...MODELS.embedderIds];
const precision = values.precision;

process.env.FACEREC_MODELS_MIRROR ??= path.join(sharedDir, 'models', 'upstream');

const { photos: unique, duplicates, hashOf } = await loadLabelledPhotos();
const identities = new Set(unique.map((p) => p.identity));
console.log(
  `data: ${unique.length} distinct labelled photos (${duplicates} duplicate files dropped), ` +
    `${identities.size} identities, under ${path.join(sharedDir, 'faces')}`,
);

/**
 * The shipped value: mid-gap between the ROC threshold and the next impostor distance, with 3 decimals, or as few
 * more as it takes to stay inside the gap (else the ROC threshold itself).
 */
function shippedValue(threshold: number, distances: readonly number[]): number {
  // `threshold` is midway in the gap between two measured distances (see operatingPointAtFar): round it to
  // 3 decimals, or more where that would leave the gap.
  const below = Math.max(...distances.filter((d) => d <= threshold));
  const above = Math.min(...distances.filter((d) => d > threshold));
  for (let digits = 3; digits <= 6; digits++) {
    const rounded = Math.round(threshold * 10 ** digits) / 10 ** digits;
    if (rounded >= below && rounded < above) return rounded;
  }
  return threshold;
}

/** The demo photos of @vladmandic/face-api (installed with the workspace): faces no labelled photo shows. */
async function strangerPhotos(): Promise<{ file: string; bytes: Uint8Array }[]> {
  const demo = path.join(
    path.dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')),
    'demo',
  );
  const files = (await readdir(demo)).filter((f) => /^sample\d+\.jpg$/.test(f)).sort();
  return Promise.all(files.map(async (f) => ({ file: f, bytes: await readFile(path.join(demo, f)) })));
}
const strangers = await strangerPhotos();

const rate = (hits: number, all: number) => `${((100 * hits) / all).toFixed(2)} % (${hits}/${all})`;

const store = ModelStore.fromEnv(await loadManifest());
const provider = createOnnxProvider({ modelStore: store });
const detector = withPrecroppedFallback(provider.detector('mtcnn'));
const shipped: string[] = [];
for (const id of embedderIds) {
  let embedder: FaceEmbedder;
  try {
    embedder = await provider.embedder(id, precision ? { precision } : undefined);
  } catch (error) {
    console.log(`\n${id}: not measured — ${(error as Error).message.split('\n')[0]}`);
    continue;
  }
  console.log(`\n${embedder.modelId} (crop: ${JSON.stringify(embedder.preprocessing.crop)})`);
  const kept: { photo: LabelledPhoto; crop: Parameters<FaceEmbedder['embed']>[0][number] }[] = [];
  for (const photo of unique) {
    const image = await decodeImage(photo.bytes);
    const [found] = await detector.detectFaces([image], { crop: embedder.preprocessing.crop });
    const { faces: detected, crops } = found!;
    if (!detected.length) {
      console.log(`  no face: ${relativeToFaces(photo.file)} (left out)`);
      continue;
    }
    let best = 0;
    detected.forEach((f, i) => {
      if (boxArea(f) > boxArea(detected[best]!)) best = i;
    });
    kept.push({ photo, crop: crops[best]!.image });
  }
  const vectors = await embedder.embed(kept.map((k) => k.crop));
  // Every face of the strangers' photos (not only the largest: a group photo's faces are all strangers).
  const strangerCrops: { image: Parameters<FaceEmbedder['embed']>[0][number]; size: number }[] = [];
  for (const photo of strangers) {
    const [found] = await detector.detectFaces([await decodeImage(photo.bytes)], {
      crop: embedder.preprocessing.crop,
    });
    found!.faces.forEach((f, i) => {
      strangerCrops.push({
        image: found!.crops[i]!.image,
        size: Math.max(f.box[2] - f.box[0], f.box[3] - f.box[1]),
      });
    });
  }
  const strangerVectors = await embedder.embed(strangerCrops.map((c) => c.image));
  await embedder.dispose();
  const strangerDots = strangerVectors.map((s) => vectors.map((v) => dot(s, v)));

  const dots: { genuine: number[]; impostor: number[] } = { genuine: [], impostor: [] };
  for (let i = 0; i < kept.length; i++) {
    for (let j = i + 1; j < kept.length; j++) {
      const d = dot(vectors[i]!, vectors[j]!);
      (kept[i]!.photo.identity === kept[j]!.photo.identity ? dots.genuine : dots.impostor).push(d);
    }
  }
  // The dot product of two photos named by file (any copy of the same bytes).
  const dotOf = (a: string, b: string) => {
    const [i, j] = [a, b].map((f) => kept.findIndex((k) => k.photo.hash === hashOf.get(f)));
    return i! < 0 || j! < 0 ? undefined : dot(vectors[i!]!, vectors[j!]!);
  };
  console.log(
    `  ${kept.length} photos embedded: ${dots.genuine.length} genuine pairs, ${dots.impostor.length} impostor pairs`,
  );
  const values: Partial<Record<DistanceMetric, number>> = {};
  for (const metric of ['euclidean', 'cosine'] as const) {
    const genuine = dots.genuine.map((d) => distanceFromDot(metric, d));
    const impostor = dots.impostor.map((d) => distanceFromDot(metric, d));
    const roc = rocCurve(genuine, impostor);
    const point = operatingPointAtFar(roc, targetFar);
    if (!point) {
      console.log(`  ${metric}: no threshold reaches FAR ${targetFar}`);
      continue;
    }
    const value = shippedValue(point.threshold, [...genuine, ...impostor]);
    values[metric] = value;
    const acceptedAt = (ds: readonly number[], at: number) => ds.filter((d) => d <= at).length;
    const accepted = (ds: readonly number[]) => acceptedAt(ds, value);
    const eer = equalErrorRate(roc);
    const tar = accepted(genuine);
    const far = accepted(impostor);
    console.log(
      `  ${metric.padEnd(9)} threshold ${value} at target FAR ${100 * targetFar} %: FAR ${rate(far, impostor.length)}, ` +
        `TAR ${rate(tar, genuine.length)}, pair accuracy ` +
        `${((100 * (tar + impostor.length - far)) / (genuine.length + impostor.length)).toFixed(2)} %; ` +
        `EER ${(100 * eer.rate).toFixed(2)} % at ${eer.threshold.toFixed(4)}; AUC ${areaUnderCurve(genuine, impostor).toFixed(4)}`,
    );
    // The threshold the registry ships now (measured at fp32): where this run lands on it, e.g. at int8.
    const current = MODELS.embedder(id).thresholds[metric]?.value;
    if (current !== undefined && current !== value) {
      const [t, f] = [acceptedAt(genuine, current), acceptedAt(impostor, current)];
      console.log(
        `            at the shipped threshold ${current}: FAR ${rate(f, impostor.length)}, TAR ${rate(t, genuine.length)}, ` +
          `pair accuracy ${((100 * (t + impostor.length - f)) / (genuine.length + impostor.length)).toFixed(2)} %`,
      );
    }
    // Held out: strangers' faces against the labelled photos, at the threshold chosen above (and the shipped one).
    const heldOut = strangerDots.flat().map((d) => distanceFromDot(metric, d));
    const atShipped =
      current !== undefined && current !== value
        ? `; at the shipped ${current}: ${rate(acceptedAt(heldOut, current), heldOut.length)}`
        : '';
    console.log(
      `            held out: ${strangerCrops.length} faces of ${strangers.length} photos no labelled photo shows ` +
        `(@vladmandic/face-api's demo/sample*.jpg, ${Math.min(...strangerCrops.map((c) => c.size)).toFixed(0)}–` +
        `${Math.max(...strangerCrops.map((c) => c.size)).toFixed(0)} px) against the ${kept.length} photos: FAR ` +
        `${rate(accepted(heldOut), heldOut.length)} at ${value}${atShipped}; AUC against the genuine pairs ` +
        `${areaUnderCurve(genuine, heldOut).toFixed(4)}`,
    );
    const mean = (ds: readonly number[]) => ds.reduce((a, b) => a + b, 0) / ds.length;
    const testPairs = ['obama2.jpg', 'biden.jpg'].map((other) => {
      const d = dotOf(testImage('obama.jpg'), testImage(other));
      return `obama–${other} ${d === undefined ? 'n/a' : distanceFromDot(metric, d).toFixed(4)}`;
    });
    console.log(
      `            mean distance genuine ${mean(genuine).toFixed(3)}, impostor ${mean(impostor).toFixed(3)}; ` +
        `face_recognition's test pairs: ${testPairs.join(', ')}`,
    );
  }
  const measuredOn =
    `${kept.length} labelled photos of ${new Set(kept.map((k) => k.photo.identity)).size} people in ../shared/faces ` +
    `(bbt, face_recognition, facenet-pytorch), all ${dots.genuine.length + dots.impostor.length} pairs, ROC at a ` +
    `${100 * targetFar} % false-accept rate (scripts/measure-thresholds.ts)`;
  shipped.push(
    `${embedder.modelId}: ${Object.entries(values)
      .map(([metric, value]) => `${metric} ${value}`)
      .join(', ')} — measuredOn: "${measuredOn}"`,
  );
}
await detector.dispose();
console.log(`\nregistry thresholds (packages/framework/src/registry/builtin.ts):\n${shipped.join('\n')}`);
