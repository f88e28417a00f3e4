import { readFile } from 'node:fs/promises';
import { CheckpointError, decodeImage, type RgbImage, type StateDict } from '@facerec/framework';
import {
  describeWithSharedData,
  embeddingAgreement,
  readSyntheticReference,
  type SyntheticReference,
  sharedPath,
  syntheticStateDict,
  withoutTensor,
  withTensor,
} from '@facerec/framework/testing';
import { TfjsInceptionResnetV1Embedder } from '@facerec/provider-tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cosine, describeOnBackend, dot, TEST_BACKENDS } from './helpers.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';

/**
 * Crops each backend embeds. `wasm`: all 67. The pure-JavaScript `cpu` backend needs 6–12 s per face, so it
 * embeds every 8th crop (9 crops), in CI too: every crop runs the same network, so the other 58 check no code
 * the 9 do not (wasm embeds them all), and all 67 took 13 minutes of a 40-minute CI run on a 2-core AVX2
 * machine. The centred correlation is then taken over those 9, centred on their own mean on both sides.
 * (`FACEREC_FULL_PARITY=1` still makes MTCNN's cpu parity check every image: there each image takes its own
 * path through the cascade.)
 */
const CROP_FILTER: Record<(typeof TEST_BACKENDS)[number], (index: number) => boolean> = {
  wasm: () => true,
  cpu: (i) => i % 8 === 0,
};

let reference: SyntheticReference;
let stateDict: StateDict;
let crops: RgbImage[];

async function setUp(): Promise<void> {
  reference ??= await readSyntheticReference(sharedPath(REFERENCE));
  stateDict ??= syntheticStateDict(reference.keys);
  crops ??= await Promise.all(
    reference.embeddings.map(async (e) => decodeImage(await readFile(sharedPath('reference', e.cropPng)))),
  );
}

function parity(backend: (typeof TEST_BACKENDS)[number]): void {
  let embedder: TfjsInceptionResnetV1Embedder;
  let indices: number[];

  beforeAll(async () => {
    await setUp();
    embedder = await TfjsInceptionResnetV1Embedder.fromStateDict(stateDict, {
      backend,
      modelId: 'inception-resnet-v1/synthetic',
      maxBatchSize: 8,
    });
    indices = reference.embeddings.map((_, i) => i).filter(CROP_FILTER[backend]);
  });
  afterAll(() => embedder?.dispose());

  it('matches facenet-pytorch (cosine ≥ 0.9999 each, centred correlation ≥ 0.999)', {
    timeout: 1_200_000,
  }, async () => {
    const started = performance.now();
    const ours = await embedder.embed(indices.map((i) => crops[i]!));
    const seconds = (performance.now() - started) / 1000;
    const refs = indices.map((i) => reference.embeddings[i]!.embedding);
    const { cosines, minCosine, correlation, minCentredCosine, maxAbsDifference } = embeddingAgreement(
      ours,
      refs,
    );
    console.log(
      `tfjs ${backend} InceptionResnetV1 parity over ${ours.length} crops (${seconds.toFixed(1)} s): ` +
        `min cosine ${minCosine.toFixed(9)} (1 − cos = ${(1 - minCosine).toExponential(2)}), ` +
        `centred correlation ${correlation.toFixed(9)} (1 − r = ${(1 - correlation).toExponential(2)}), ` +
        `min per-crop centred cosine ${minCentredCosine.toFixed(7)}, max |Δ| ${maxAbsDifference.toExponential(2)}`,
    );
    for (const v of ours) expect(Math.abs(Math.sqrt(dot(v, v)) - 1)).toBeLessThan(1e-5);
    for (const c of cosines) expect(c).toBeGreaterThanOrEqual(0.9999);
    expect(correlation).toBeGreaterThanOrEqual(0.999);
  });
}

describeWithSharedData(
  'tfjs InceptionResnetV1 vs facenet-pytorch (synthetic weights)',
  [REFERENCE, 'reference/crops'],
  () => {
    for (const backend of TEST_BACKENDS) describeOnBackend(backend, 'parity', () => parity(backend));

    describeOnBackend('cpu', 'checkpoint checks', () => {
      beforeAll(setUp);

      it('regenerates the synthetic weights bit for bit', () => {
        const first = stateDict.get(reference.keys[0]!.name)!.data as Float32Array;
        expect([...first.subarray(0, reference.firstValuesOfFirstTensor.length)]).toEqual(
          reference.firstValuesOfFirstTensor,
        );
      });

      it('ignores logits.* (pretrained classifier head) and num_batches_tracked', {
        timeout: 120_000,
      }, async () => {
        const withLogits = withTensor(
          withTensor(stateDict, 'logits.weight', [8631, 512]),
          'logits.bias',
          [8631],
        );
        const embedder = await TfjsInceptionResnetV1Embedder.fromStateDict(withLogits, {
          backend: 'cpu',
          modelId: 'inception-resnet-v1/synthetic',
        });
        try {
          const [v] = await embedder.embed([crops[0]!]);
          expect(cosine(v!, reference.embeddings[0]!.embedding)).toBeGreaterThanOrEqual(0.9999);
        } finally {
          await embedder.dispose();
        }
      });

      it('names missing, mis-shaped and unexpected keys in CheckpointError, and keeps no tensors', async () => {
        const tf = await import('@tensorflow/tfjs-core');
        const before = tf.memory().numTensors;
        const attempt = async (sd: StateDict) =>
          TfjsInceptionResnetV1Embedder.fromStateDict(sd, {
            backend: 'cpu',
            modelId: 'x',
            source: 'vggface2.pt',
          }).catch((e: unknown) => e);

        const e1 = await attempt(withoutTensor(stateDict, 'repeat_2.3.branch1.1.bn.running_var'));
        expect(CheckpointError.isInstance(e1)).toBe(true);
        expect((e1 as Error).message).toBe(
          'vggface2.pt: InceptionResnetV1: missing weight "repeat_2.3.branch1.1.bn.running_var" (expected shape [128])',
        );

        const e2 = await attempt(withTensor(stateDict, 'last_linear.weight', [128, 1792]));
        expect((e2 as Error).message).toContain(
          '"last_linear.weight" has shape [128, 1792], expected [512, 1792]',
        );

        const e3 = await attempt(withTensor(stateDict, 'classifier.weight', [2]));
        expect((e3 as Error).message).toContain('unexpected key "classifier.weight"');

        expect(tf.memory().numTensors).toBe(before);
      });
    });
  },
);
