import * as ort from 'onnxruntime-node';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
const dir = `${os.homedir()}/.cache/facerec/onnx`;
const file = (net: string) => `${dir}/${readdirSync(dir).find((f) => f.startsWith(`mtcnn-${net}`) && f.endsWith('.onnx'))}`;
const which = process.argv[2] ?? 'rnet';
const dims = which === 'rnet' ? [256, 3, 24, 24] : which === 'onet' ? [32, 3, 48, 48] : [1, 3, 432, 768];
const s = await ort.InferenceSession.create(readFileSync(file(which)), {
  intraOpNumThreads: 2, enableMemPattern: false, enableProfiling: true, profileFilePrefix: `/tmp/exp/prof-${which}`,
  ...(process.env.OPT ? { optimizedModelFilePath: `/tmp/exp/${which}-opt.onnx` } : {}),
});
const n = dims.reduce((a, b) => a * b);
const data = new Float32Array(n).map(() => Math.random() * 2 - 1);
const input = { input: new ort.Tensor('float32', data, dims) };
for (let i = 0; i < 5; i++) await s.run(input);
const t = performance.now();
for (let i = 0; i < 20; i++) await s.run(input);
console.log(which, 'ms per run', ((performance.now() - t) / 20).toFixed(2));
const out = (s as any).endProfiling?.();
console.log('profile', out);
