import * as ort from 'onnxruntime-node';
import { readSyntheticReference, syntheticStateDict } from './packages/framework/src/testing/synthetic-weights.js';
import { buildInceptionResnetV1 } from './packages/provider-onnx/src/graph/index.js';
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
const f = '/tmp/irv1-explore.onnx';
if (!existsSync(f)) {
  const ref = await readSyntheticReference('/work/shared/reference/inception_resnet_v1_synthetic.json');
  writeFileSync(f, buildInceptionResnetV1(syntheticStateDict(ref.keys)));
}
const level = (process.argv[2] ?? 'all') as 'all';
const extra = process.argv[3] ? JSON.parse(process.argv[3]) : {};
const bytes = readFileSync(f);
let t0 = performance.now();
const s = await ort.InferenceSession.create(process.argv[4] === 'path' ? f : bytes, { executionMode: 'sequential', graphOptimizationLevel: level, intraOpNumThreads: 2, ...extra });
const create = performance.now() - t0;
const x = new Float32Array(8 * 3 * 160 * 160).map((_, i) => Math.sin(i) );
const times: number[] = [];
for (let r = 0; r < 12; r++) { const t = performance.now(); await s.run({ input: new ort.Tensor('float32', x, [8, 3, 160, 160]) }); times.push(performance.now() - t); }
times.sort((a, b) => a - b);
console.log(level, JSON.stringify(extra), process.argv[4] ?? '', 'create', create.toFixed(0), 'ms/face b8', (times[6]! / 8).toFixed(1), 'maxRSS MB', (process.resourceUsage().maxRSS / 1024).toFixed(0));
