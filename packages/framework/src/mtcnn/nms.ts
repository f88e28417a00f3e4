/**
 * Non-maximum suppression in the two variants facenet-pytorch's MTCNN uses. They differ on purpose and the
 * differences change which boxes survive, so both are reproduced exactly:
 * - `union`: torchvision's `nms` — IoU with areas `(x2 − x1)·(y2 − y1)` (no +1), boxes visited by score,
 *   highest first; a box is dropped when its IoU with a kept box is `> threshold`.
 * - `min`: facenet-pytorch's numpy NMS — areas and overlaps with the +1 pixel convention, overlap divided by
 *   the smaller area; among equal scores the later box is visited first.
 *
 * Boxes are given as a flat array with `stride` numbers per box, x1 y1 x2 y2 first.
 */
export type NmsMode = 'union' | 'min';

/** Returns the indices of the kept boxes, highest score first. */
export function nms(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  count: number,
  stride: number,
  threshold: number,
  mode: NmsMode,
): number[] {
  if (count === 0) return [];
  const plus = mode === 'min' ? 1 : 0;
  const order = Array.from({ length: count }, (_, i) => i);
  // Tie order matters: scores saturate near 1 in float32, and which of two tied boxes survives changes the
  // output. torch's descending sort keeps tied boxes in index order; numpy's `argsort` (insertion sort for
  // the small arrays seen here) is ascending and stable, and facenet-pytorch pops from its end, so tied
  // boxes are visited last index first.
  if (mode === 'min') order.sort((a, b) => scores[b]! - scores[a]! || b - a);
  else order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  const areas = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const o = i * stride;
    areas[i] = (boxes[o + 2]! - boxes[o]! + plus) * (boxes[o + 3]! - boxes[o + 1]! + plus);
  }
  const suppressed = new Uint8Array(count);
  const keep: number[] = [];
  for (let oi = 0; oi < count; oi++) {
    const i = order[oi]!;
    if (suppressed[i]) continue;
    keep.push(i);
    const ib = i * stride;
    const ix1 = boxes[ib]!;
    const iy1 = boxes[ib + 1]!;
    const ix2 = boxes[ib + 2]!;
    const iy2 = boxes[ib + 3]!;
    for (let oj = oi + 1; oj < count; oj++) {
      const j = order[oj]!;
      if (suppressed[j]) continue;
      const jb = j * stride;
      const w = Math.max(0, Math.min(ix2, boxes[jb + 2]!) - Math.max(ix1, boxes[jb]!) + plus);
      const h = Math.max(0, Math.min(iy2, boxes[jb + 3]!) - Math.max(iy1, boxes[jb + 1]!) + plus);
      const inter = w * h;
      const overlap =
        mode === 'min' ? inter / Math.min(areas[i]!, areas[j]!) : inter / (areas[i]! + areas[j]! - inter);
      if (overlap > threshold) suppressed[j] = 1;
    }
  }
  return keep;
}
