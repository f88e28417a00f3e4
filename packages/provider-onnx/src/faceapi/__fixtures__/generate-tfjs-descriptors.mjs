// Regenerates tfjs-descriptors.json: @vladmandic/face-api's own FaceRecognitionNet (tfjs CPU backend) on the
// shared test images given as int32 tensors, i.e. face-api.js's tensor-input path. Run from the repository
// root: `node packages/provider-onnx/src/faceapi/__fixtures__/generate-tfjs-descriptors.mjs`.
// The browser bundle is the only build of the package that brings its own tfjs, so it is loaded with Node
// hidden from its environment checks and given a minimal tfjs platform and face-api env instead.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import util from 'node:util';

const require = createRequire(path.resolve('package.json'));
const sharp = require('sharp');
const pkg = path.dirname(require.resolve('@vladmandic/face-api/package.json'));
const shared = process.env.FACEREC_SHARED_DIR ?? path.resolve('..', 'shared');

const versions = process.versions;
Object.defineProperty(process, 'versions', { value: { ...versions, node: undefined }, configurable: true });
const faceapi = await import(path.join(pkg, 'dist', 'face-api.esm.js'));
Object.defineProperty(process, 'versions', { value: versions, configurable: true });
const { tf } = faceapi;
tf.setPlatform('fixture', {
  fetch: (url, init) => fetch(url, init),
  now: () => performance.now(),
  encode: (text) => new TextEncoder().encode(text),
  decode: (bytes, encoding) => new TextDecoder(encoding).decode(bytes),
  isTypedArray: (a) =>
    util.types.isFloat32Array(a) || util.types.isInt32Array(a) || util.types.isUint8Array(a),
  setTimeoutCustom: (fn, ms) => setTimeout(fn, ms),
});
await tf.setBackend('cpu');
class Stub {}
faceapi.env.setEnv({
  Canvas: Stub,
  CanvasRenderingContext2D: Stub,
  Image: Stub,
  ImageData: Stub,
  Video: Stub,
  createCanvasElement: () => new Stub(),
  createImageElement: () => new Stub(),
  createVideoElement: () => new Stub(),
  fetch: globalThis.fetch,
  readFile: () => {
    throw new Error('not used');
  },
});

const model = path.join(pkg, 'model');
const manifest = JSON.parse(
  readFileSync(path.join(model, 'face_recognition_model-weights_manifest.json'), 'utf8'),
);
const bin = readFileSync(path.join(model, 'face_recognition_model.bin'));
const net = faceapi.nets.faceRecognitionNet;
net.loadFromWeightMap(
  tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length), manifest[0].weights),
);

const images = [
  'test/face1.png',
  'test/face2.png',
  'test/face_rectangular.png',
  'bbt/amy/amy1.png',
  'bbt/sheldon/sheldon1.png',
];
const descriptors = {};
for (const image of images) {
  const { data, info } = await sharp(path.join(shared, 'faces', 'face-api.js', image))
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const tensor = tf.tensor3d(new Int32Array(data), [info.height, info.width, 3], 'int32');
  descriptors[image] = Array.from(await net.computeFaceDescriptor(tensor), (v) => Number(v.toPrecision(8)));
  tensor.dispose();
}
const out = {
  generator: `@vladmandic/face-api ${faceapi.version} FaceRecognitionNet, tfjs ${tf.version_core} cpu backend, int32 HWC tensor inputs (generate-tfjs-descriptors.mjs)`,
  note: 'This build normalises with (x - mean) / 255; justadudewhohacks/face-api.js and dlib use / 256.',
  pixelDivisor: 255,
  descriptors,
};
writeFileSync(new URL('./tfjs-descriptors.json', import.meta.url), `${JSON.stringify(out, null, 1)}\n`);
console.log(`wrote ${images.length} descriptors`);
