import type { FaceDetection, FiveLandmarks } from '../contracts/detector.js';
import type { RgbImage } from '../image/types.js';
import type { MtcnnNetworks, PNetOutput } from './networks.js';
import { nms } from './nms.js';
import type { ResolvedMtcnnOptions } from './options.js';
import { type FrameSampler, FrameSampling } from './sampling.js';

/*
 * The MTCNN cascade, reproducing facenet-pytorch's `detect_face` step for step, so that any provider that
 * runs the same three networks gets the same boxes. Where facenet-pytorch computes in float32, values are
 * rounded with Math.fround at the points where the rounding can change a floor, a threshold or a crop.
 *
 * Differences, all deliberate:
 * - images of different sizes can share one call; P-Net runs per distinct size, R-Net and O-Net batch all
 *   candidates together (results are per image either way, as NMS never mixes images);
 * - a candidate whose crop would be empty is dropped (facenet-pytorch skips its crop but keeps its box,
 *   misaligning the remaining boxes and crops).
 */

const f32 = Math.fround;

/** Candidate box: x1, y1, x2, y2, score, then four regression offsets. */
const STRIDE = 9;

interface Candidates {
  /** Flat, STRIDE numbers per candidate. */
  data: number[];
  /** Index of the image each candidate belongs to. */
  image: number[];
}

/** The pyramid scales facenet-pytorch uses for an image with shorter side `minSide`. */
export function pyramidScales(minSide: number, minFaceSize: number, factor: number): number[] {
  const m = 12.0 / minFaceSize;
  let minl = minSide * m;
  let scale = m;
  const scales: number[] = [];
  while (minl >= 12) {
    scales.push(scale);
    scale *= factor;
    minl *= factor;
  }
  return scales;
}

/** The P-Net input sizes of a `width`×`height` frame's pyramid, largest first, with their scales. */
export function pyramidLevels(
  width: number,
  height: number,
  options: Pick<ResolvedMtcnnOptions, 'minFaceSize' | 'factor'>,
): { scale: number; height: number; width: number }[] {
  return pyramidScales(Math.min(height, width), options.minFaceSize, options.factor).map((scale) => ({
    scale,
    height: Math.trunc(height * scale + 1),
    width: Math.trunc(width * scale + 1),
  }));
}

function pushPNetCandidates(
  out: Candidates,
  reg: Float32Array,
  prob: Float32Array,
  index: number,
  mapH: number,
  mapW: number,
  scale: number,
  threshold: number,
  imageIndex: number,
): void {
  const plane = mapH * mapW;
  const probBase = (index * 2 + 1) * plane;
  const regBase = index * 4 * plane;
  const s = f32(scale);
  const local: number[] = [];
  for (let y = 0; y < mapH; y++) {
    for (let x = 0; x < mapW; x++) {
      const p = y * mapW + x;
      const score = prob[probBase + p]!;
      if (score < threshold) continue;
      local.push(
        Math.floor(f32(f32(2 * x + 1) / s)),
        Math.floor(f32(f32(2 * y + 1) / s)),
        Math.floor(f32(f32(2 * x + 12) / s)),
        Math.floor(f32(f32(2 * y + 12) / s)),
        score,
        reg[regBase + p]!,
        reg[regBase + plane + p]!,
        reg[regBase + 2 * plane + p]!,
        reg[regBase + 3 * plane + p]!,
      );
    }
  }
  // NMS within this scale and image (Union, 0.5), as facenet-pytorch does before merging scales.
  const keep = nms(
    local,
    Array.from({ length: local.length / STRIDE }, (_, i) => local[i * STRIDE + 4]!),
    local.length / STRIDE,
    STRIDE,
    0.5,
    'union',
  );
  for (const k of keep) {
    for (let j = 0; j < STRIDE; j++) out.data.push(local[k * STRIDE + j]!);
    out.image.push(imageIndex);
  }
}

/** Keeps, per image, the candidates that survive NMS; returns them grouped by image in image order. */
function nmsPerImage(c: Candidates, imageCount: number, threshold: number, mode: 'union' | 'min'): number[] {
  const kept: number[] = [];
  for (let img = 0; img < imageCount; img++) {
    const idx: number[] = [];
    c.image.forEach((im, i) => {
      if (im === img) idx.push(i);
    });
    if (idx.length === 0) continue;
    const boxes = new Float64Array(idx.length * 4);
    const scores = new Float64Array(idx.length);
    idx.forEach((i, k) => {
      for (let j = 0; j < 4; j++) boxes[k * 4 + j] = c.data[i * STRIDE + j]!;
      scores[k] = c.data[i * STRIDE + 4]!;
    });
    for (const k of nms(boxes, scores, idx.length, 4, threshold, mode)) kept.push(idx[k]!);
  }
  return kept;
}

function select(c: Candidates, keep: readonly number[]): Candidates {
  const out: Candidates = { data: [], image: [] };
  for (const k of keep) {
    for (let j = 0; j < STRIDE; j++) out.data.push(c.data[k * STRIDE + j]!);
    out.image.push(c.image[k]!);
  }
  return out;
}

/** facenet-pytorch `rerec`: squares each box around its centre, side = the longer side. */
function square(c: Candidates): void {
  for (let i = 0; i < c.image.length; i++) {
    const o = i * STRIDE;
    const d = c.data;
    const h = f32(d[o + 3]! - d[o + 1]!);
    const w = f32(d[o + 2]! - d[o]!);
    const l = Math.max(w, h);
    d[o] = f32(f32(d[o]! + f32(w * 0.5)) - f32(l * 0.5));
    d[o + 1] = f32(f32(d[o + 1]! + f32(h * 0.5)) - f32(l * 0.5));
    d[o + 2] = f32(d[o]! + l);
    d[o + 3] = f32(d[o + 1]! + l);
  }
}

/** facenet-pytorch `bbreg`: applies regression offsets scaled by the box size with the +1 convention. */
function regress(c: Candidates, reg: ArrayLike<number>): void {
  for (let i = 0; i < c.image.length; i++) {
    const o = i * STRIDE;
    const d = c.data;
    const w = f32(d[o + 2]! - d[o]! + 1);
    const h = f32(d[o + 3]! - d[o + 1]! + 1);
    d[o] = f32(d[o]! + f32(reg[i * 4]! * w));
    d[o + 1] = f32(d[o + 1]! + f32(reg[i * 4 + 1]! * h));
    d[o + 2] = f32(d[o + 2]! + f32(reg[i * 4 + 2]! * w));
    d[o + 3] = f32(d[o + 3]! + f32(reg[i * 4 + 3]! * h));
  }
}

/**
 * Crops every candidate box (truncated to ints and clamped like facenet-pytorch `pad`), resizes it to
 * size×size with area interpolation and standardises it. Candidates whose crop is empty are removed from
 * `c` in place.
 */
function cropCandidates(
  c: Candidates,
  frames: FrameSampler,
  sizes: readonly { width: number; height: number }[],
  size: number,
): Float32Array {
  const per = 3 * size * size;
  const keep: number[] = [];
  const rects: number[] = [];
  for (let i = 0; i < c.image.length; i++) {
    const { width, height } = sizes[c.image[i]!]!;
    const o = i * STRIDE;
    const x = Math.max(Math.trunc(c.data[o]!), 1);
    const y = Math.max(Math.trunc(c.data[o + 1]!), 1);
    const ex = Math.min(Math.trunc(c.data[o + 2]!), width);
    const ey = Math.min(Math.trunc(c.data[o + 3]!), height);
    const cw = ex - (x - 1);
    const ch = ey - (y - 1);
    if (cw <= 0 || ch <= 0) continue;
    keep.push(i);
    rects.push(x - 1, y - 1, cw, ch);
  }
  const input = frames.output(keep.length * per);
  for (let k = 0; k < keep.length; k++) {
    const r = k * 4;
    frames.sample(
      c.image[keep[k]!]!,
      rects[r]!,
      rects[r + 1]!,
      rects[r + 2]!,
      rects[r + 3]!,
      size,
      size,
      k * per,
    );
  }
  if (keep.length !== c.image.length) Object.assign(c, select(c, keep));
  return input;
}

function filterByScore(
  c: Candidates,
  prob: Float32Array,
  threshold: number,
): { kept: number[]; scores: number[] } {
  const kept: number[] = [];
  const scores: number[] = [];
  for (let i = 0; i < c.image.length; i++) {
    const score = prob[i * 2 + 1]!;
    if (score > threshold) {
      kept.push(i);
      scores.push(score);
    }
  }
  return { kept, scores };
}

/**
 * P-Net on one `height`×`width` image in horizontal strips of at most about `limit` pixels, joined into the
 * maps one call would give, value for value. P-Net is a fully convolutional net with stride 2 and a 12-pixel
 * receptive field: output row `r` reads input rows `2r` to `2r + 11` only (3×3 convolution, 2×2 max-pooling
 * in ceil mode, two 3×3 convolutions). So output rows `a` to `b − 1` are exactly those of a run on input rows
 * `2a` to `2b + 9`: a strip starting on an even row keeps the pooling windows aligned, and it ends on whole
 * windows, except the last strip, which takes every remaining row, as the full image's last (possibly
 * partial) window does. Strips overlap by 10 rows. Memory is then bounded by the strip, not the frame.
 */
async function pnetInStrips(
  networks: MtcnnNetworks,
  input: Float32Array,
  height: number,
  width: number,
  limit: number,
): Promise<PNetOutput> {
  // Output rows: 3×3 convolution, ceil-mode 2×2 pooling, then two 3×3 convolutions.
  const mapH = Math.ceil((height - 2) / 2) - 4;
  const rows = Math.max(1, Math.floor((Math.floor(limit / width) - 10) / 2));
  const plane = height * width;
  let reg: Float32Array | undefined;
  let prob: Float32Array | undefined;
  let mapW = 0;
  for (let a = 0; a < mapH; a += rows) {
    const b = Math.min(mapH, a + rows);
    const top = 2 * a;
    const bottom = b === mapH ? height : 2 * b + 10;
    const stripH = bottom - top;
    const strip = new Float32Array(3 * stripH * width);
    for (let c = 0; c < 3; c++) {
      strip.set(input.subarray(c * plane + top * width, c * plane + bottom * width), c * stripH * width);
    }
    const out = await networks.pnet(strip, 1, stripH, width, { transient: true, levelPixels: plane });
    if (out.height !== b - a) {
      throw new Error(`P-Net strip of ${stripH} rows gave ${out.height} output rows, expected ${b - a}`);
    }
    if (!reg || !prob) {
      mapW = out.width;
      reg = new Float32Array(4 * mapH * mapW);
      prob = new Float32Array(2 * mapH * mapW);
    }
    const n = (b - a) * mapW;
    for (let c = 0; c < 4; c++) reg.set(out.reg.subarray(c * n, (c + 1) * n), c * mapH * mapW + a * mapW);
    for (let c = 0; c < 2; c++) prob.set(out.prob.subarray(c * n, (c + 1) * n), c * mapH * mapW + a * mapW);
  }
  return { reg: reg!, prob: prob!, height: mapH, width: mapW };
}

/**
 * Runs the MTCNN cascade over `images` with the given networks; returns every face per image, **largest box
 * area first** (facenet-pytorch's order with `select_largest=True`), before any `keepAll` selection.
 */
export async function runMtcnnCascade(
  images: readonly RgbImage[],
  networks: MtcnnNetworks,
  options: Pick<ResolvedMtcnnOptions, 'minFaceSize' | 'thresholds' | 'factor'>,
  sampling: FrameSampling = new FrameSampling(),
): Promise<FaceDetection[][]> {
  // A frame whose shorter side is below the smallest face searched for has no pyramid level, so no face (as in
  // facenet-pytorch): nothing is loaded or run (a 10,000,000×2 frame used to take seconds to load for nothing).
  if (images.every((p) => pyramidLevels(p.width, p.height, options).length === 0))
    return images.map(() => []);
  const frames = sampling.load(images);
  const [t1, t2, t3] = options.thresholds;

  // Stage 1: P-Net over each image's pyramid. Images of the same size share one P-Net call per scale.
  const stage1: Candidates = { data: [], image: [] };
  const bySize = new Map<string, number[]>();
  images.forEach((p, i) => {
    const key = `${p.width}x${p.height}`;
    bySize.set(key, [...(bySize.get(key) ?? []), i]);
  });
  const perImage: Candidates[] = images.map(() => ({ data: [], image: [] }));
  const limit = networks.pnetPixelLimit?.() ?? Number.POSITIVE_INFINITY;
  // The provider may hold memory for this call's strips until the P-Net stage ends (MtcnnNetworks.afterPNet).
  try {
    for (const sameSize of bySize.values()) {
      const { width: w, height: h } = images[sameSize[0]!]!;
      for (const { scale, height: hs, width: ws } of pyramidLevels(w, h, options)) {
        // As many images per call as the provider's limit allows (at least one; a larger one goes in strips).
        const perCall = Math.max(1, Math.floor(limit / (hs * ws)));
        for (let first = 0; first < sameSize.length; first += perCall) {
          const members = sameSize.slice(first, first + perCall);
          const per = 3 * hs * ws;
          const input = frames.output(members.length * per);
          members.forEach((m, k) => {
            frames.sample(m, 0, 0, w, h, hs, ws, k * per);
          });
          const out =
            hs * ws > limit
              ? await pnetInStrips(networks, input, hs, ws, limit)
              : await networks.pnet(input, members.length, hs, ws);
          members.forEach((m, k) => {
            pushPNetCandidates(perImage[m]!, out.reg, out.prob, k, out.height, out.width, scale, t1, m);
          });
        }
      }
    }
  } finally {
    await networks.afterPNet?.();
  }
  // Loops, not push(...c.data): a crowded 4K frame leaves hundreds of thousands of numbers, and a spread that
  // large overflows the call stack (RangeError in the detecting thread).
  for (const c of perImage) {
    for (const v of c.data) stage1.data.push(v);
    for (const v of c.image) stage1.image.push(v);
  }
  let boxes = select(stage1, nmsPerImage(stage1, images.length, 0.7, 'union'));
  for (let i = 0; i < boxes.image.length; i++) {
    const o = i * STRIDE;
    const d = boxes.data;
    const regw = f32(d[o + 2]! - d[o]!);
    const regh = f32(d[o + 3]! - d[o + 1]!);
    const q = [
      f32(d[o]! + f32(d[o + 5]! * regw)),
      f32(d[o + 1]! + f32(d[o + 6]! * regh)),
      f32(d[o + 2]! + f32(d[o + 7]! * regw)),
      f32(d[o + 3]! + f32(d[o + 8]! * regh)),
    ];
    for (let j = 0; j < 4; j++) d[o + j] = q[j]!;
  }
  square(boxes);

  // Stage 2: R-Net on 24×24 crops.
  if (boxes.image.length > 0) {
    const input = cropCandidates(boxes, frames, images, 24);
    const out = boxes.image.length ? await networks.rnet(input, boxes.image.length) : undefined;
    if (out) {
      const { kept, scores } = filterByScore(boxes, out.prob, t2);
      const next = select(boxes, kept);
      kept.forEach((k, i) => {
        next.data[i * STRIDE + 4] = scores[i]!;
        for (let j = 0; j < 4; j++) next.data[i * STRIDE + 5 + j] = out.reg[k * 4 + j]!;
      });
      boxes = select(next, nmsPerImage(next, images.length, 0.7, 'union'));
      regress(boxes, regOf(boxes));
      square(boxes);
    }
  }

  // Stage 3: O-Net on 48×48 crops, landmarks, final regression and Min-mode NMS.
  const results: FaceDetection[][] = images.map(() => []);
  if (boxes.image.length > 0) {
    const input = cropCandidates(boxes, frames, images, 48);
    if (boxes.image.length > 0) {
      const out = await networks.onet(input, boxes.image.length);
      const { kept, scores } = filterByScore(boxes, out.prob, t3);
      const next = select(boxes, kept);
      const points: FiveLandmarks[] = [];
      kept.forEach((k, i) => {
        const o = i * STRIDE;
        next.data[o + 4] = scores[i]!;
        for (let j = 0; j < 4; j++) next.data[o + 5 + j] = out.reg[k * 4 + j]!;
        const w = f32(next.data[o + 2]! - next.data[o]! + 1);
        const h = f32(next.data[o + 3]! - next.data[o + 1]! + 1);
        const lm = out.landmarks.subarray(k * 10, k * 10 + 10);
        const pts = [0, 1, 2, 3, 4].map((p) => [
          f32(f32(f32(w * lm[p]!) + next.data[o]!) - 1),
          f32(f32(f32(h * lm[p + 5]!) + next.data[o + 1]!) - 1),
        ]);
        points.push(pts as FiveLandmarks);
      });
      regress(next, regOf(next));
      for (const k of nmsPerImage(next, images.length, 0.7, 'min')) {
        const o = k * STRIDE;
        const d = next.data;
        results[next.image[k]!]!.push({
          box: [d[o]!, d[o + 1]!, d[o + 2]!, d[o + 3]!],
          score: d[o + 4]!,
          landmarks: points[k]!,
        });
      }
    }
  }
  for (const faces of results) faces.sort((a, b) => boxArea(b) - boxArea(a));
  return results;
}

function regOf(c: Candidates): number[] {
  const reg: number[] = [];
  for (let i = 0; i < c.image.length; i++) {
    for (let j = 0; j < 4; j++) reg.push(c.data[i * STRIDE + 5 + j]!);
  }
  return reg;
}

/** Box area `(x2 − x1)·(y2 − y1)`, the measure facenet-pytorch sorts and selects by. */
export function boxArea(face: Pick<FaceDetection, 'box'>): number {
  return (face.box[2] - face.box[0]) * (face.box[3] - face.box[1]);
}
