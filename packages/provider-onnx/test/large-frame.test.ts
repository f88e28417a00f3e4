/**
 * Memory of one very large frame (issue 16): a 25-megapixel frame (inside the default decode limit) is
 * detected on a working copy (MtcnnOptions.maxPixels, default 3840×2160), its large pyramid levels in strips of
 * at most 128 Ki pixels (on a P-Net session opened for this frame and released after its P-Net stage, so
that they never grow the lasting session's arena), R-Net and O-Net in
 * bounded chunks, and the process returns to its baseline afterwards instead of staying ~1.4 GB larger.
 * Measured in a fresh child process (large-frame-child.mjs) for a clean resident-memory figure, the peak from
 * the kernel's high-water mark, with glibc's mmap threshold at 1 MiB and two heaps (MALLOC_ARENA_MAX), as the
 * Dockerfile sets them.
 *
 * Budgets: peak at most baseline + 600 MiB (measured ≈ +390 to +400 MiB: the decoded frame, its working copy,
 * the cascade's buffers; whole P-Net levels on an arena-less session peaked at +1,040 MiB, which a timer in
 * the detecting thread had read as +390); afterwards, native memory (resident minus V8's heap) within 60 MiB of
 * the warmed-up baseline's (see AFTER_MARGIN_MIB), and everything within 100 MiB (depending on when V8's memory
 * reducer gives back its ≈ 17 MiB of grown heap; before this work, ~1.4 GB kept for good).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('./large-frame-child.mjs', import.meta.url));
const PEAK_BUDGET_MIB = 600;
/**
 * Native memory after the frame may exceed the warmed-up baseline's by at most this many MiB (allocator pages
 * kept). Measured as a ratio first: 1.01–1.08 in eight CI runs, then 1.06 and 1.12; 1.01–1.17 in 20 local runs;
 * then a CI run at 1.25 (185 → 232 MiB, +47) on code that had measured 1.14 an hour before, with nothing in
 * detection changed. The baseline alone varies by 20 MiB between processes, so the bound is a margin, not a ratio.
 * A frame's pixels kept alive would add ≥ 75 MiB, which 60 still catches.
 */
const AFTER_MARGIN_MIB = 60;

interface Report {
  baseline: number;
  baselineHeap: number;
  peak: number;
  kernelPeak: boolean;
  after: number;
  afterHeap: number;
  idleMs: number;
  ms: number;
  faces: { box: [number, number, number, number] }[];
  smallFaces: { box: [number, number, number, number] }[];
  scale: [number, number];
  size: [number, number];
}

const iou = (a: readonly number[], b: readonly number[]) => {
  const w = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const h = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const area = (r: readonly number[]) => (r[2]! - r[0]!) * (r[3]! - r[1]!);
  return (w * h) / (area(a) + area(b) - w * h);
};

describeWithSharedData(
  'a 25-megapixel frame',
  ['models/upstream/pnet.pt', 'faces/face-api.js/bbt1.jpg'],
  () => {
    it('peaks within budget, returns to baseline, and finds the faces the 1280-px frame has', {
      timeout: 180_000,
    }, () => {
      const out = execFileSync(
        process.execPath,
        [
          '--expose-gc',
          CHILD,
          sharedPath('faces', 'face-api.js', 'bbt1.jpg'),
          '25000000',
          String(AFTER_MARGIN_MIB),
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '1048576', MALLOC_ARENA_MAX: '2' },
          timeout: 150_000,
        },
      );
      const r = JSON.parse(out.trim().split('\n').at(-1)!) as Report;
      console.log(
        `25 MP frame (${r.size.join('×')}): baseline ${r.baseline.toFixed(0)} MiB, peak ${r.peak.toFixed(0)} MiB ` +
          `(+${(r.peak - r.baseline).toFixed(0)}${r.kernelPeak ? ', kernel high-water mark' : ', sampled'}), after ${r.after.toFixed(0)} MiB ` +
          `(${(r.idleMs / 1000).toFixed(1)} s idle; V8 heap ${r.baselineHeap.toFixed(0)} → ${r.afterHeap.toFixed(0)} MiB, ` +
          `native ${(r.baseline - r.baselineHeap).toFixed(0)} → ${(r.after - r.afterHeap).toFixed(0)} MiB), ` +
          `detection ${r.ms.toFixed(0)} ms`,
      );
      expect(r.size[0] * r.size[1]).toBeGreaterThan(24.9e6);
      expect(r.peak - r.baseline).toBeLessThan(PEAK_BUDGET_MIB);
      // Native memory (all but V8's heap) within the margin; V8's grown heap (≈ +17 MiB) goes back when its memory
      // reducer runs, which took from under 1 s to over 30 s of idle: up to 40 MiB more of it meanwhile.
      expect(r.after - r.afterHeap).toBeLessThan(r.baseline - r.baselineHeap + AFTER_MARGIN_MIB);
      expect(r.after).toBeLessThan(r.baseline + AFTER_MARGIN_MIB + 40);
      // The same faces, found on the working copy and mapped back to the frame's coordinates.
      expect(r.smallFaces.length).toBeGreaterThan(1);
      const [sx, sy] = r.scale;
      for (const small of r.smallFaces) {
        const expected = small.box.map((v, i) => v * (i % 2 === 0 ? sx : sy));
        expect(Math.max(...r.faces.map((f) => iou(f.box, expected)))).toBeGreaterThan(0.8);
      }
    });
  },
);
