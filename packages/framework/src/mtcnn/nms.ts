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
  // Boxes that do not intersect have overlap 0 and can never suppress each other, so each kept box is only
  // compared with boxes in its neighbourhood of a uniform grid (cells as large as the largest box). This
  // changes nothing in the result, and turns the thousands of P-Net candidates of a large frame from a
  // quadratic cost into a near-linear one.
  const grid = SpatialGrid.build(boxes, count, stride);
  const { starts, members, stamp, columns } = grid;
  const range = new Int32Array(4);
  for (let oi = 0; oi < count; oi++) {
    const i = order[oi]!;
    if (suppressed[i]) continue;
    keep.push(i);
    const ib = i * stride;
    const ix1 = boxes[ib]!;
    const iy1 = boxes[ib + 1]!;
    const ix2 = boxes[ib + 2]!;
    const iy2 = boxes[ib + 3]!;
    const areaI = areas[i]!;
    const mark = i + 1;
    grid.cellRange(i, range);
    for (let cy = range[2]!; cy <= range[3]!; cy++) {
      for (let cx = range[0]!; cx <= range[1]!; cx++) {
        const cell = cy * columns + cx;
        for (let m = starts[cell]!, end = starts[cell + 1]!; m < end; m++) {
          const j = members[m]!;
          // Visit each neighbour once, however many cells the two boxes share.
          if (stamp[j] === mark) continue;
          stamp[j] = mark;
          if (suppressed[j] || j === i) continue;
          const jb = j * stride;
          const w = Math.max(0, Math.min(ix2, boxes[jb + 2]!) - Math.max(ix1, boxes[jb]!) + plus);
          const h = Math.max(0, Math.min(iy2, boxes[jb + 3]!) - Math.max(iy1, boxes[jb + 1]!) + plus);
          const inter = w * h;
          const overlap =
            mode === 'min' ? inter / Math.min(areaI, areas[j]!) : inter / (areaI + areas[j]! - inter);
          if (overlap > threshold) suppressed[j] = 1;
        }
      }
    }
  }
  return keep;
}

/**
 * A uniform grid over the boxes; each box is registered in every cell its extent touches, so the boxes that
 * can intersect a given box are found in the cells it touches. Cells are as large as the median box: the
 * many small P-Net boxes touch few cells each, the few large ones many. Loops over it are written out in
 * `nms` rather than passed as callbacks: this runs for every kept box of every frame.
 */
class SpatialGrid {
  private constructor(
    private readonly boxes: ArrayLike<number>,
    private readonly stride: number,
    private readonly cell: number,
    private readonly x0: number,
    private readonly y0: number,
    readonly columns: number,
    private readonly rows: number,
    /** Members of cell k are `members[starts[k] .. starts[k + 1])`. */
    readonly starts: Int32Array,
    readonly members: Int32Array,
    /** Per box, the last visit's mark (so a box sharing several cells is visited once). */
    readonly stamp: Int32Array,
  ) {}

  static build(boxes: ArrayLike<number>, count: number, stride: number): SpatialGrid {
    let x0 = Number.POSITIVE_INFINITY;
    let y0 = Number.POSITIVE_INFINITY;
    let x1 = Number.NEGATIVE_INFINITY;
    let y1 = Number.NEGATIVE_INFINITY;
    const sizes = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const b = i * stride;
      x0 = Math.min(x0, boxes[b]!);
      y0 = Math.min(y0, boxes[b + 1]!);
      x1 = Math.max(x1, boxes[b + 2]!);
      y1 = Math.max(y1, boxes[b + 3]!);
      sizes[i] = Math.max(boxes[b + 2]! - boxes[b]!, boxes[b + 3]! - boxes[b + 1]!);
    }
    sizes.sort();
    // The +1 pixel convention of the `min` mode makes boxes that touch count as overlapping: pad by 1.
    x0 -= 1;
    y0 -= 1;
    const median = Math.max(sizes[count >> 1]!, 1);
    const columns = Math.min(Math.floor((x1 + 1 - x0) / median) + 1, 1024);
    const rows = Math.min(Math.floor((y1 + 1 - y0) / median) + 1, 1024);
    const cell = Math.max(median, (x1 + 1 - x0) / 1024, (y1 + 1 - y0) / 1024);
    const range = new Int32Array(4);
    const empty = new Int32Array(0);
    const sizing = new SpatialGrid(boxes, stride, cell, x0, y0, columns, rows, empty, empty, empty);
    const starts = new Int32Array(columns * rows + 1);
    for (let i = 0; i < count; i++) {
      sizing.cellRange(i, range);
      for (let y = range[2]!; y <= range[3]!; y++) {
        for (let x = range[0]!; x <= range[1]!; x++) starts[y * columns + x + 1]!++;
      }
    }
    for (let k = 1; k < starts.length; k++) starts[k]! += starts[k - 1]!;
    const members = new Int32Array(starts[starts.length - 1]!);
    const fill = starts.slice();
    for (let i = 0; i < count; i++) {
      sizing.cellRange(i, range);
      for (let y = range[2]!; y <= range[3]!; y++) {
        for (let x = range[0]!; x <= range[1]!; x++) members[fill[y * columns + x]!++] = i;
      }
    }
    return new SpatialGrid(
      boxes,
      stride,
      cell,
      x0,
      y0,
      columns,
      rows,
      starts,
      members,
      new Int32Array(count),
    );
  }

  /** Writes the cells box `i` touches (with a 1-pixel margin) as `[x first, x last, y first, y last]`. */
  cellRange(i: number, out: Int32Array): void {
    const b = i * this.stride;
    const lastColumn = this.columns - 1;
    const lastRow = this.rows - 1;
    out[0] = Math.min(Math.max(Math.floor((this.boxes[b]! - 1 - this.x0) / this.cell), 0), lastColumn);
    out[1] = Math.min(Math.max(Math.floor((this.boxes[b + 2]! + 1 - this.x0) / this.cell), 0), lastColumn);
    out[2] = Math.min(Math.max(Math.floor((this.boxes[b + 1]! - 1 - this.y0) / this.cell), 0), lastRow);
    out[3] = Math.min(Math.max(Math.floor((this.boxes[b + 3]! + 1 - this.y0) / this.cell), 0), lastRow);
  }
}
