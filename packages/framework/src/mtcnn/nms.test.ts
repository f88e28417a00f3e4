import { describe, expect, it } from 'vitest';
import { seededRandom as prng } from '../testing/random.js';
import { type NmsMode, nms } from './nms.js';

/** Non-maximum suppression by its definition: every kept box against every later one, no grid. */
function bruteForce(boxes: number[], scores: number[], threshold: number, mode: NmsMode): number[] {
  const n = scores.length;
  const plus = mode === 'min' ? 1 : 0;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => scores[b]! - scores[a]! || (mode === 'min' ? b - a : a - b));
  const area = (i: number) =>
    (boxes[i * 4 + 2]! - boxes[i * 4]! + plus) * (boxes[i * 4 + 3]! - boxes[i * 4 + 1]! + plus);
  const suppressed = new Set<number>();
  const keep: number[] = [];
  for (const i of order) {
    if (suppressed.has(i)) continue;
    keep.push(i);
    for (const j of order) {
      if (j === i || suppressed.has(j)) continue;
      const w = Math.max(
        0,
        Math.min(boxes[i * 4 + 2]!, boxes[j * 4 + 2]!) - Math.max(boxes[i * 4]!, boxes[j * 4]!) + plus,
      );
      const h = Math.max(
        0,
        Math.min(boxes[i * 4 + 3]!, boxes[j * 4 + 3]!) -
          Math.max(boxes[i * 4 + 1]!, boxes[j * 4 + 1]!) +
          plus,
      );
      const inter = w * h;
      const overlap =
        mode === 'min' ? inter / Math.min(area(i), area(j)) : inter / (area(i) + area(j) - inter);
      if (overlap > threshold) suppressed.add(j);
    }
  }
  return keep;
}

function randomBoxes(count: number, seed: number): { boxes: number[]; scores: number[] } {
  const rand = prng(seed);
  const boxes: number[] = [];
  const scores: number[] = [];
  for (let i = 0; i < count; i++) {
    // Mostly small boxes in clusters (like P-Net candidates), some large ones, integer and fractional edges.
    const large = rand() < 0.05;
    const size = large ? 100 + rand() * 300 : 6 + rand() * 30;
    const cluster = Math.floor(rand() * 12);
    const x = (cluster % 4) * 150 + rand() * 60;
    const y = Math.floor(cluster / 4) * 150 + rand() * 60;
    const round = rand() < 0.5 ? Math.floor : (v: number) => v;
    boxes.push(round(x), round(y), round(x + size), round(y + size * (0.8 + rand() * 0.4)));
    // Coarse scores so that ties occur, as they do when float32 probabilities saturate.
    scores.push(Math.round(rand() * 20) / 20);
  }
  return { boxes, scores };
}

describe('nms', () => {
  it.each([
    ['union', 0.5],
    ['union', 0.7],
    ['min', 0.7],
  ] as const)('keeps exactly what the quadratic definition keeps (%s, %s)', (mode, threshold) => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const { boxes, scores } = randomBoxes(600, seed);
      expect(nms(boxes, scores, scores.length, 4, threshold, mode)).toEqual(
        bruteForce(boxes, scores, threshold, mode),
      );
    }
  });

  it('reads boxes from a wider stride', () => {
    const { boxes, scores } = randomBoxes(200, 9);
    const wide: number[] = [];
    for (let i = 0; i < scores.length; i++)
      wide.push(...boxes.slice(i * 4, i * 4 + 4), scores[i]!, 0, 0, 0, 0);
    expect(nms(wide, scores, scores.length, 9, 0.5, 'union')).toEqual(
      bruteForce(boxes, scores, 0.5, 'union'),
    );
  });

  it('visits tied boxes in torch order for union and numpy order for min', () => {
    // Two identical boxes with equal scores: union keeps the first, min keeps the last.
    const boxes = [0, 0, 10, 10, 0, 0, 10, 10];
    expect(nms(boxes, [0.9, 0.9], 2, 4, 0.5, 'union')).toEqual([0]);
    expect(nms(boxes, [0.9, 0.9], 2, 4, 0.5, 'min')).toEqual([1]);
    expect(nms([], [], 0, 4, 0.5, 'union')).toEqual([]);
  });

  it('counts touching boxes as overlapping in min mode only (the +1 pixel convention)', () => {
    const boxes = [0, 0, 10, 10, 10, 0, 20, 10];
    expect(nms(boxes, [0.9, 0.8], 2, 4, 0.05, 'union')).toEqual([0, 1]);
    expect(nms(boxes, [0.9, 0.8], 2, 4, 0.05, 'min')).toEqual([0]);
  });
});
