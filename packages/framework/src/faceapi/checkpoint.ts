/**
 * Taking face-api.js's FaceRecognitionNet weights into a network, the same for every runtime: each conv's bias
 * and per-channel scale layer folded into the convolution (float64 products, rounded once) and the fully
 * connected layer turned to PyTorch's `[out, in]` layout, so both providers start from identical weights.
 */
import type { FoldedWeights } from '../checkpoint/fold.js';
import { type FloatTensor, StateDictReader } from '../checkpoint/reader.js';
import type { StateDict } from '../checkpoint/types.js';
import {
  FACEAPI_RESNET_DESCRIPTOR_SIZE,
  FACEAPI_RESNET_FC,
  FACEAPI_RESNET_FEATURES,
} from './architecture.js';

/** The reader every FaceRecognitionNet builder takes its weights through; errors name the model (and `source`). */
export function faceApiResnetReader(weights: StateDict, source?: string): StateDictReader {
  return new StateDictReader(weights, {
    model: 'FaceRecognitionNet',
    ...(source === undefined ? {} : { source }),
  });
}

/**
 * A face-api.js conv layer `conv2d(x, filters) + bias` then `·scale.weights + scale.biases`, folded into one
 * convolution: W'[o] = W[o]·s[o], b' = b·s + β. tfjs stores the filters HWIO; the folded weight is PyTorch's
 * OIHW `[cout, cin, kernel, kernel]`, which both providers take.
 *
 * @throws CheckpointError when one of the layer's four weights is missing or has the wrong shape.
 */
export function foldedFaceApiConv(
  r: StateDictReader,
  prefix: string,
  kernel: number,
  cin: number,
  cout: number,
): FoldedWeights {
  const filters = r.takeData(`${prefix}/conv/filters`, [kernel, kernel, cin, cout]);
  const bias = r.takeData(`${prefix}/conv/bias`, [cout]);
  const scale = r.takeData(`${prefix}/scale/weights`, [cout]);
  const shift = r.takeData(`${prefix}/scale/biases`, [cout]);
  const weight = new Float32Array(cout * cin * kernel * kernel);
  for (let o = 0; o < cout; o++) {
    const s = scale[o]!;
    for (let i = 0; i < cin; i++) {
      for (let y = 0; y < kernel; y++) {
        for (let x = 0; x < kernel; x++) {
          weight[((o * cin + i) * kernel + y) * kernel + x] =
            filters[((y * kernel + x) * cin + i) * cout + o]! * s;
        }
      }
    }
  }
  const folded = new Float32Array(cout);
  for (let o = 0; o < cout; o++) folded[o] = bias[o]! * scale[o]! + shift[o]!;
  return {
    weight: { dims: [cout, cin, kernel, kernel], data: weight },
    bias: { dims: [cout], data: folded },
  };
}

/**
 * The fully connected layer as PyTorch's `[128, 256]` (`[out, in]`) Linear weight. face-api.js stores it
 * `[256, 128]` and computes `features · fc`; the transpose moves values without arithmetic.
 */
export function faceApiResnetFc(r: StateDictReader): FloatTensor {
  const fc = r.takeData(FACEAPI_RESNET_FC, [FACEAPI_RESNET_FEATURES, FACEAPI_RESNET_DESCRIPTOR_SIZE]);
  const transposed = new Float32Array(fc.length);
  for (let i = 0; i < FACEAPI_RESNET_FEATURES; i++) {
    for (let o = 0; o < FACEAPI_RESNET_DESCRIPTOR_SIZE; o++) {
      transposed[o * FACEAPI_RESNET_FEATURES + i] = fc[i * FACEAPI_RESNET_DESCRIPTOR_SIZE + o]!;
    }
  }
  return { dims: [FACEAPI_RESNET_DESCRIPTOR_SIZE, FACEAPI_RESNET_FEATURES], data: transposed };
}
