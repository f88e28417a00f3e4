import { CheckpointError, type StateDict } from '@facerec/framework';
import {
  cosine,
  describeWithSharedData,
  dot,
  embeddingAgreement,
  readSyntheticReference,
  type SyntheticReference,
  sharedPath,
  syntheticStateDict,
  thrownBy,
  withoutTensor,
  withTensor,
} from '@facerec/framework/testing';
import { type InferenceSession, Tensor } from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildInceptionResnetV1 } from './inception-resnet-v1.js';
import { decodeModel } from './onnx-schema.js';
import { createSession } from './session.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';

/** A crop PNG as facenet-pytorch's `fixed_image_standardization` input: (x − 127.5) / 128, CHW. */
async function loadCrop(file: string): Promise<Float32Array> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  if (width !== 160 || height !== 160 || channels < 3)
    throw new Error(`${file}: unexpected ${width}×${height}×${channels}`);
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++)
    for (let c = 0; c < 3; c++) out[c * plane + p] = (data[p * channels + c]! - 127.5) / 128;
  return out;
}

async function embed(session: InferenceSession, crops: readonly Float32Array[]): Promise<Float64Array[]> {
  const batch = new Float32Array(crops.length * 3 * 160 * 160);
  for (const [i, c] of crops.entries()) batch.set(c, i * c.length);
  const out = (await session.run({ input: new Tensor('float32', batch, [crops.length, 3, 160, 160]) }))
    .embedding!;
  expect(out.dims).toEqual([crops.length, 512]);
  const data = out.data as Float32Array;
  return crops.map((_, i) => Float64Array.from(data.subarray(i * 512, (i + 1) * 512)));
}

describeWithSharedData(
  'InceptionResnetV1 graph vs facenet-pytorch (synthetic weights)',
  [REFERENCE, 'reference/crops'],
  () => {
    let reference: SyntheticReference;
    let stateDict: StateDict;
    let bytes: Uint8Array;
    let session: InferenceSession;
    let crops: Float32Array[];

    beforeAll(async () => {
      reference = await readSyntheticReference(sharedPath(REFERENCE));
      let t0 = performance.now();
      stateDict = syntheticStateDict(reference.keys);
      const generateMs = performance.now() - t0;
      t0 = performance.now();
      bytes = buildInceptionResnetV1(stateDict, { metadata: { weights: 'synthetic' } });
      const buildMs = performance.now() - t0;
      t0 = performance.now();
      session = await createSession(bytes, { intraOpNumThreads: 2 });
      const sessionMs = performance.now() - t0;
      console.log(
        `InceptionResnetV1: synthetic weights ${generateMs.toFixed(0)} ms, graph build ${buildMs.toFixed(0)} ms ` +
          `(${(bytes.length / 2 ** 20).toFixed(1)} MiB), session create ${sessionMs.toFixed(0)} ms`,
      );
      crops = await Promise.all(
        reference.embeddings.map((e) => loadCrop(sharedPath('reference', e.cropPng))),
      );
    });

    afterAll(async () => {
      await session?.release();
    });

    it('regenerates the synthetic weights bit for bit', () => {
      const first = stateDict.get(reference.keys[0]!.name)!.data as Float32Array;
      expect([...first.subarray(0, reference.firstValuesOfFirstTensor.length)]).toEqual(
        reference.firstValuesOfFirstTensor,
      );
    });

    it('matches the reference embeddings of every crop (cosine ≥ 0.9999, centred correlation ≥ 0.999)', async () => {
      const ours: Float64Array[] = [];
      // Uneven batches (8, 8, …, 3) exercise the dynamic batch dimension.
      for (let i = 0; i < crops.length; i += 8) ours.push(...(await embed(session, crops.slice(i, i + 8))));
      const refs = reference.embeddings.map((e) => Float64Array.from(e.embedding));

      const { cosines, minCosine, correlation, minCentredCosine, maxAbsDifference } = embeddingAgreement(
        ours,
        refs,
      );
      const worstCrop = reference.embeddings[cosines.indexOf(minCosine)]!.cropPng;
      console.log(
        `InceptionResnetV1 parity over ${ours.length} crops: min cosine ${minCosine.toFixed(9)} ` +
          `(1 − cos = ${(1 - minCosine).toExponential(2)}, ${worstCrop}), centred correlation ${correlation.toFixed(9)} ` +
          `(1 − r = ${(1 - correlation).toExponential(2)}), min per-crop centred cosine ${minCentredCosine.toFixed(7)}, ` +
          `max |Δ| ${maxAbsDifference.toExponential(2)}`,
      );
      for (const o of ours) expect(Math.sqrt(dot(o, o))).toBeCloseTo(1, 5);
      expect(minCosine).toBeGreaterThanOrEqual(0.9999);
      expect(correlation).toBeGreaterThanOrEqual(0.999);
    });

    it('gives the same embedding for a crop alone and inside a batch', async () => {
      const [alone] = await embed(session, [crops[5]!]);
      const batched = await embed(session, crops.slice(0, 8));
      expect(cosine(alone!, batched[5]!)).toBeGreaterThan(0.999999);
    });

    it('ignores logits.* (pretrained classifier head) and num_batches_tracked', async () => {
      const withLogits = withTensor(
        withTensor(stateDict, 'logits.weight', [8631, 512], 0.5),
        'logits.bias',
        [8631],
      );
      const other = buildInceptionResnetV1(withLogits, { metadata: { weights: 'synthetic' } });
      expect(Buffer.from(other).equals(Buffer.from(bytes))).toBe(true);
      const s2 = await createSession(other, { intraOpNumThreads: 2 });
      const [a] = await embed(session, [crops[0]!]);
      const [b] = await embed(s2, [crops[0]!]);
      await s2.release();
      expect([...b!]).toEqual([...a!]);
    });

    it('names missing and mis-shaped keys in CheckpointError', () => {
      const missing = withoutTensor(stateDict, 'repeat_2.3.branch1.1.bn.running_var');
      expect(() => buildInceptionResnetV1(missing, { source: 'vggface2.pt' })).toThrowError(
        'vggface2.pt: InceptionResnetV1: missing weight "repeat_2.3.branch1.1.bn.running_var" (expected shape [128])',
      );
      const wrong = withTensor(stateDict, 'last_linear.weight', [128, 1792]);
      const error = thrownBy(() => buildInceptionResnetV1(wrong));
      expect(CheckpointError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain(
        '"last_linear.weight" has shape [128, 1792], expected [512, 1792]',
      );
    });

    it('writes a self-describing model', () => {
      const model = decodeModel(bytes);
      expect(model.graph.input.map((i) => i.type.tensorType.shape.dim)).toEqual([
        [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: 160 }, { dimValue: 160 }],
      ]);
      expect(model.graph.output.map((o) => o.name)).toEqual(['embedding']);
      const ops = new Set(model.graph.node.map((n) => n.opType));
      expect(ops.has('BatchNormalization')).toBe(false);
      expect(model.metadataProps).toContainEqual({
        key: 'facerec_architecture',
        value: 'facenet-pytorch/inception_resnet_v1',
      });
    });

    it('reports inference time (printed, not asserted)', async () => {
      const timings: string[] = [];
      for (const batch of [1, 8]) {
        const input = crops.slice(0, batch);
        await embed(session, input); // warm-up: first run allocates the arena and picks kernels
        const runs = batch === 1 ? 10 : 4;
        const times: number[] = [];
        for (let r = 0; r < runs; r++) {
          const t0 = performance.now();
          await embed(session, input);
          times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        const median = times[Math.floor(times.length / 2)]!;
        timings.push(`batch ${batch}: ${(median / batch).toFixed(1)} ms/face (median of ${runs})`);
      }
      console.log(`InceptionResnetV1 timing, intraOpNumThreads=2: ${timings.join('; ')}`);
      expect(timings).toHaveLength(2);
    });
  },
);
