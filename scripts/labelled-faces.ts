// The labelled photos of ../shared/faces (or $FACEREC_SHARED_DIR/faces) and the pair statistics over them, shared by
// scripts/measure-thresholds.ts (the registry's shipped thresholds) and scripts/bench-crops.ts (crop policies
// against face-api.js's own pipeline), so both measure the same data the same way.
//
// Every labelled single-person photo, files with the same bytes counted once:
//   - face-api.js/bbt/<name>/*.png — 8 identities × 4;
//   - face_recognition/knn_examples/train/<name>/* and the single-person probes of knn_examples/test, named as
//     that project's example expects (alex_lacamoire1 → alex_lacamoire, johnsnow_test1 → kit_harington,
//     obama1 → obama);
//   - face_recognition/tests/test_images: obama, obama2, obama3, obama_partial_face, obama_partial_face2 (obama)
//     and biden (32bit.png is an unlabelled RGBA copy of a photo, left out);
//   - facenet-pytorch/{angelina_jolie,kate_siegel,paul_rudd,shea_whigham}.jpg — one photo each: impostor pairs.
// Group photos are left out (which face is whom is not labelled).
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sharedDir } from './bench-common.js';

/** The faces folder the photos are read from. */
export const facesDir = path.join(sharedDir, 'faces');

/** One distinct labelled photo. */
export interface LabelledPhoto {
  readonly identity: string;
  /** Absolute path of the first file with these bytes. */
  readonly file: string;
  readonly bytes: Uint8Array;
  /** sha256 of the bytes. */
  readonly hash: string;
}

async function folderPerIdentity(root: string): Promise<{ identity: string; file: string }[]> {
  const out: { identity: string; file: string }[] = [];
  for (const identity of (await readdir(root)).sort()) {
    for (const file of (await readdir(path.join(root, identity))).sort())
      out.push({ identity, file: path.join(root, identity, file) });
  }
  return out;
}

const faceRecognition = path.join(facesDir, 'face_recognition');

/** A face_recognition test image by file name, e.g. `testImage('obama.jpg')`. */
export const testImage = (name: string): string => path.join(faceRecognition, 'tests', 'test_images', name);

/** A path relative to the faces folder, for printing. */
export const relativeToFaces = (file: string): string => path.relative(facesDir, file);

/** What {@link loadLabelledPhotos} finds. */
export interface LabelledPhotos {
  /** The distinct photos. */
  readonly photos: LabelledPhoto[];
  /** How many listed files repeated the bytes of an earlier one. */
  readonly duplicates: number;
  /** The sha256 of every listed file, duplicates included (to find a photo by any of its paths). */
  readonly hashOf: ReadonlyMap<string, string>;
}

/**
 * The distinct labelled photos, in a fixed order (folder by folder, names sorted), and how many duplicate files
 * were dropped: face_recognition ships obama.jpg, obama2.jpg and biden.jpg in two folders, which would otherwise
 * be genuine pairs at distance 0.
 *
 * @throws Error when two files with the same bytes carry different names.
 */
export async function loadLabelledPhotos(): Promise<LabelledPhotos> {
  const named = (dir: string, pairs: Record<string, string>) =>
    Object.entries(pairs).map(([file, identity]) => ({ identity, file: path.join(dir, file) }));
  const listed = [
    ...(await folderPerIdentity(path.join(facesDir, 'face-api.js', 'bbt'))),
    ...(await folderPerIdentity(path.join(faceRecognition, 'knn_examples', 'train'))),
    ...named(path.join(faceRecognition, 'knn_examples', 'test'), {
      'alex_lacamoire1.jpg': 'alex_lacamoire',
      'johnsnow_test1.jpg': 'kit_harington',
      'obama1.jpg': 'obama',
    }),
    ...named(path.join(faceRecognition, 'tests', 'test_images'), {
      'obama.jpg': 'obama',
      'obama2.jpg': 'obama',
      'obama3.jpg': 'obama',
      'obama_partial_face.jpg': 'obama',
      'obama_partial_face2.jpg': 'obama',
      'biden.jpg': 'biden',
    }),
    ...['angelina_jolie', 'kate_siegel', 'paul_rudd', 'shea_whigham'].map((identity) => ({
      identity,
      file: path.join(facesDir, 'facenet-pytorch', `${identity}.jpg`),
    })),
  ];
  const seen = new Map<string, LabelledPhoto>();
  const hashOf = new Map<string, string>();
  for (const { identity, file } of listed) {
    const bytes = new Uint8Array(await readFile(file));
    const hash = createHash('sha256').update(bytes).digest('hex');
    hashOf.set(file, hash);
    const first = seen.get(hash);
    if (first) {
      if (first.identity !== identity) throw new Error(`${file} and ${first.file}: same bytes, two names`);
      continue;
    }
    seen.set(hash, { identity, file, bytes, hash });
  }
  return { photos: [...seen.values()], duplicates: listed.length - seen.size, hashOf };
}

/**
 * Area under the ROC of distances: the probability that a random genuine pair is closer than a random impostor
 * pair (Mann–Whitney U; ties, including two infinite distances, count one half). Written here because the
 * framework's calibration needs no AUC; 20 lines are cheaper than a statistics dependency.
 */
export function areaUnderCurve(genuine: readonly number[], impostor: readonly number[]): number {
  const sorted = [...impostor].sort((a, b) => a - b);
  const below = (v: number, strict: boolean) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (strict ? sorted[mid]! < v : sorted[mid]! <= v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  let wins = 0;
  for (const g of genuine) {
    const lessOrEqual = below(g, false);
    const less = below(g, true);
    wins += sorted.length - lessOrEqual + (lessOrEqual - less) / 2;
  }
  return wins / (genuine.length * impostor.length);
}

/** The distances of every pair of photos, split by whether both show the same identity. */
export interface PairDistances {
  readonly genuine: number[];
  readonly impostor: number[];
}

/**
 * Every pair's distance, given each photo's identity and a distance function over photo indices that answers
 * `Infinity` for a photo without a face (so such a pair is never accepted).
 */
export function pairDistances(
  identities: readonly string[],
  distance: (i: number, j: number) => number,
): PairDistances {
  const out: PairDistances = { genuine: [], impostor: [] };
  for (let i = 0; i < identities.length; i++) {
    for (let j = i + 1; j < identities.length; j++)
      (identities[i] === identities[j] ? out.genuine : out.impostor).push(distance(i, j));
  }
  return out;
}

/** The mean of the finite values. */
export function finiteMean(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite);
  return finite.reduce((a, b) => a + b, 0) / finite.length;
}
