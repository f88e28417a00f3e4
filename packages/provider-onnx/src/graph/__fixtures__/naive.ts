/**
 * Test-only reference operators written as plain loops in float64, following PyTorch's definitions rather
 * than ONNX's, so the graphs are checked against an independent implementation. Not part of the package
 * build (tsconfig excludes `__fixtures__`).
 */
import type { NamedTensor, StateDict } from '../../../../framework/src/checkpoint/types.js';

/** A dense row-major tensor. */
export interface Nd {
  readonly shape: readonly number[];
  readonly data: Float64Array | Float32Array;
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Deterministic uniform numbers in [0, 1), so failures reproduce. */
export { seededRandom } from '../../../../framework/src/testing/random.js';

/** A tensor of uniform values in [lo, hi). */
export function randomNd(shape: readonly number[], rand: () => number, lo = -1, hi = 1): Nd {
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * rand();
  return { shape, data };
}

/** A state dict of float32 tensors with the given shapes, filled from `fill(key, shape)`. */
export function makeStateDict(
  shapes: Readonly<Record<string, readonly number[]>>,
  fill: (key: string, shape: readonly number[]) => Float32Array,
): StateDict {
  const map = new Map<string, NamedTensor>();
  for (const [name, shape] of Object.entries(shapes)) {
    map.set(name, { name, dtype: 'float32', shape: [...shape], data: fill(name, shape) });
  }
  return map;
}

/** The tensor under `key` as an {@link Nd}; throws when missing. */
export function get(sd: StateDict, key: string): Nd {
  const t = sd.get(key);
  if (!t) throw new Error(`test state dict lacks ${key}`);
  return { shape: t.shape, data: t.data as Float32Array };
}

/** `F.conv2d(x, w, b, stride, padding)` for `[N, C, H, W]` input. */
export function conv2d(
  x: Nd,
  w: Nd,
  b: Nd | undefined,
  stride: [number, number] = [1, 1],
  pad: [number, number] = [0, 0],
): Nd {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [o, ci, kh, kw] = w.shape as [number, number, number, number];
  if (ci !== c) throw new Error(`conv2d: ${c} input channels, weight wants ${ci}`);
  const oh = Math.floor((h + 2 * pad[0] - kh) / stride[0]) + 1;
  const ow = Math.floor((wd + 2 * pad[1] - kw) / stride[1]) + 1;
  const out = new Float64Array(n * o * oh * ow);
  for (let bn = 0; bn < n; bn++)
    for (let oc = 0; oc < o; oc++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let acc = b ? b.data[oc]! : 0;
          for (let ic = 0; ic < c; ic++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = y * stride[0] - pad[0] + ky;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = xx * stride[1] - pad[1] + kx;
                if (ix < 0 || ix >= wd) continue;
                acc +=
                  x.data[((bn * c + ic) * h + iy) * wd + ix]! * w.data[((oc * c + ic) * kh + ky) * kw + kx]!;
              }
            }
          out[((bn * o + oc) * oh + y) * ow + xx] = acc;
        }
  return { shape: [n, o, oh, ow], data: out };
}

/** `nn.PReLU(C)`: per-channel slope along dim 1, for 2-D or 4-D input. */
export function prelu(x: Nd, slope: Nd): Nd {
  const c = x.shape[1]!;
  const inner = size(x.shape.slice(2));
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = x.data[i]!;
    const ch = Math.floor(i / inner) % c;
    out[i] = v >= 0 ? v : v * slope.data[ch]!;
  }
  return { shape: x.shape, data: out };
}

/** PyTorch's pooled length: floor/ceil of (in − k)/s + 1, minus one when ceil mode would start a window past the input. */
export function pooledLength(length: number, k: number, s: number, ceil: boolean): number {
  let out = (ceil ? Math.ceil((length - k) / s) : Math.floor((length - k) / s)) + 1;
  if (ceil && (out - 1) * s >= length) out--;
  return out;
}

/** `nn.MaxPool2d(k, s, ceil_mode)` without padding; windows are clipped at the border. */
export function maxPool2d(x: Nd, k: number, s: number, ceil: boolean): Nd {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const oh = pooledLength(h, k, s, ceil);
  const ow = pooledLength(w, k, s, ceil);
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let m = Number.NEGATIVE_INFINITY;
        for (let ky = y * s; ky < Math.min(y * s + k, h); ky++)
          for (let kx = xx * s; kx < Math.min(xx * s + k, w); kx++)
            m = Math.max(m, x.data[(p * h + ky) * w + kx]!);
        out[(p * oh + y) * ow + xx] = m;
      }
  return { shape: [n, c, oh, ow], data: out };
}

/** `x.permute(...perm).contiguous()`. */
export function permute(x: Nd, perm: readonly number[]): Nd {
  const shape = perm.map((p) => x.shape[p]!);
  const inStrides = x.shape.map((_, i) => size(x.shape.slice(i + 1)));
  const out = new Float64Array(x.data.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < shape.length; d++) src += idx[d]! * inStrides[perm[d]!]!;
    out[o] = x.data[src]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return { shape, data: out };
}

/** `x.view(N, -1)`. */
export function flatten(x: Nd): Nd {
  return { shape: [x.shape[0]!, size(x.shape.slice(1))], data: x.data };
}

/** `F.linear(x, w, b)` for `[N, in]` input and `[out, in]` weight. */
export function linear(x: Nd, w: Nd, b?: Nd): Nd {
  const [n, i] = x.shape as [number, number];
  const o = w.shape[0]!;
  const out = new Float64Array(n * o);
  for (let r = 0; r < n; r++)
    for (let k = 0; k < o; k++) {
      let acc = b ? b.data[k]! : 0;
      for (let j = 0; j < i; j++) acc += x.data[r * i + j]! * w.data[k * i + j]!;
      out[r * o + k] = acc;
    }
  return { shape: [n, o], data: out };
}

/** `torch.softmax(x, dim=1)` for 2-D or 4-D input. */
export function softmaxDim1(x: Nd): Nd {
  const c = x.shape[1]!;
  const inner = size(x.shape.slice(2));
  const outer = x.shape[0]!;
  const out = new Float64Array(x.data.length);
  for (let b = 0; b < outer; b++)
    for (let p = 0; p < inner; p++) {
      let m = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < c; k++) m = Math.max(m, x.data[(b * c + k) * inner + p]!);
      let sum = 0;
      for (let k = 0; k < c; k++) sum += Math.exp(x.data[(b * c + k) * inner + p]! - m);
      for (let k = 0; k < c; k++)
        out[(b * c + k) * inner + p] = Math.exp(x.data[(b * c + k) * inner + p]! - m) / sum;
    }
  return { shape: x.shape, data: out };
}

/** Inference-mode `nn.BatchNorm{1,2}d` over dim 1. */
export function batchNorm(x: Nd, gamma: Nd, beta: Nd, mean: Nd, variance: Nd, eps: number): Nd {
  const c = x.shape[1]!;
  const inner = size(x.shape.slice(2));
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const ch = Math.floor(i / inner) % c;
    out[i] =
      ((x.data[i]! - mean.data[ch]!) / Math.sqrt(variance.data[ch]! + eps)) * gamma.data[ch]! +
      beta.data[ch]!;
  }
  return { shape: x.shape, data: out };
}

/** Largest absolute elementwise difference; throws on a shape mismatch. */
export function maxAbsDiff(actual: ArrayLike<number>, actualShape: readonly number[], expected: Nd): number {
  if (actualShape.length !== expected.shape.length || actualShape.some((d, i) => d !== expected.shape[i])) {
    throw new Error(`shape [${actualShape}] differs from expected [${expected.shape}]`);
  }
  let m = 0;
  for (let i = 0; i < expected.data.length; i++) m = Math.max(m, Math.abs(actual[i]! - expected.data[i]!));
  return m;
}
