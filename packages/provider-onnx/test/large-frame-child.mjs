// Child process of large-frame.test.ts: a fresh process, so its resident memory is this detector's alone.
// Detects `source` scaled to `pixels` pixels once, between frames of it 1280 pixels wide, and reports memory
// (MiB: baseline, peak, and after up to 30 s idle), the faces of both and the scale between them.
import { readFileSync, writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import { decodeImage } from '@facerec/framework';
import { createOnnxProvider } from '@facerec/provider-onnx';
import sharp from 'sharp';

const [source, pixels] = [process.argv[2], Number(process.argv[3])];
const meta = await sharp(source).metadata();
const width = Math.round(Math.sqrt((pixels * meta.width) / meta.height));
const height = Math.round((width * meta.height) / meta.width);
const smallHeight = Math.round((1280 * meta.height) / meta.width);
const rss = () => process.memoryUsage().rss / 2 ** 20;
/** Resident memory once garbage is collected: the lowest of a few readings (the system reclaims lazily). */
const settled = async () => {
  let low = Infinity;
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    globalThis.gc?.();
    low = Math.min(low, rss());
  }
  return low;
};
const detector = await createOnnxProvider().detector('mtcnn', {});
await detector.warmUp({ width: 1280, height: 720 });
// Encoded before the baseline, as a server receives the bytes: what is measured is decoding and detection.
// JPEG, as a camera sends it: 25 megapixels fit the 10 MB default byte limit (and the 6 MB Function URL body).
const jpeg = (w, h) => sharp(source).resize(w, h, { fit: 'fill' }).jpeg({ quality: 80 }).toBuffer();
const smallJpeg = await jpeg(1280, smallHeight);
const largeJpeg = await jpeg(width, height);
process.stderr.write(`large frame: ${width}×${height}, ${largeJpeg.length} bytes\n`);
const small = await decodeImage(smallJpeg);
for (let i = 0; i < 10; i++) await detector.detectFaces([small]);
const baseline = await settled();
// V8's heap as resident pages (its spaces' physical sizes; heapTotal counts reserved pages too), so that
// resident memory minus it is native memory: onnxruntime, buffers, the allocator.
const heap = () =>
  getHeapSpaceStatistics().reduce((sum, space) => sum + space.physical_space_size, 0) / 2 ** 20;
const baselineHeap = heap();
// The peak from the kernel's high-water mark (VmHWM, reset here): a timer in this thread cannot sample while
// onnxruntime runs synchronously on it, and read ≈ +390 MiB where the kernel saw +1,040 MiB. Elsewhere than
// Linux, the timer's readings.
const highWater = () => {
  const kb = /VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return kb === undefined ? 0 : Number(kb) / 1024;
};
let kernelPeak = false;
try {
  writeFileSync('/proc/self/clear_refs', '5');
  kernelPeak = true;
} catch {
  // no /proc (not Linux) or not allowed: the timer's readings only
}
let peak = baseline;
const sampler = setInterval(() => {
  peak = Math.max(peak, rss());
}, 10);
// As in a server, the decoded frame is garbage once its request is answered (hence the function scope).
const detectLarge = async () => {
  const large = await decodeImage(largeJpeg, { maxPixels: width * height });
  const started = performance.now();
  const [{ faces }] = await detector.detectFaces([large]);
  return { faces, ms: performance.now() - started };
};
const { faces, ms } = await detectLarge();
const [{ faces: smallFaces }] = await detector.detectFaces([small]);
for (let i = 0; i < 10; i++) await detector.detectFaces([small]);
clearInterval(sampler);
if (kernelPeak) peak = Math.max(peak, highWater());
// Then idle, as a server between requests: V8 gives its grown heap back only after some seconds without work
// (its memory reducer, which forced collections would keep postponing; seen from under 1 s to over 30 s). A
// reading every second until native memory is within `margin` MiB of the baseline's, for at most 20 s;
// `afterHeap` is V8's heap then, so that the rest (native memory: onnxruntime, buffers, the allocator) can be
// told apart.
const margin = Number(process.argv[4] ?? 40);
const idleStarted = performance.now();
let after = await settled();
let afterHeap = heap();
while (after - afterHeap > baseline - baselineHeap + margin && performance.now() - idleStarted < 20_000) {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  if (rss() < after) [after, afterHeap] = [rss(), heap()];
}
const idleMs = performance.now() - idleStarted;
process.stdout.write(
  `${JSON.stringify({ baseline, baselineHeap, peak, kernelPeak, after, afterHeap, idleMs, ms, faces, smallFaces, scale: [width / 1280, height / smallHeight], size: [width, height] })}\n`,
);
process.exit(0);
