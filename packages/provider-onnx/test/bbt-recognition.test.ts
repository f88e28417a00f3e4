import { mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  calibrateThresholdLeaveOneOut,
  EmbedderMismatchError,
  enrollGallery,
  type FaceDetector,
  type FaceEmbedder,
  type FileGallery,
  type LabelledProbe,
} from '@facerec/framework';
import { describeWithSharedData, sharedMirrorStore, sharedPath } from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { beforeAll, expect, it } from 'vitest';

const BBT = ['faces', 'face-api.js', 'bbt'];

function subset(numbers: number[]): string {
  const root = mkdtempSync(path.join(tmpdir(), 'facerec-bbt-'));
  for (const identity of readdirSync(sharedPath(...BBT))) {
    mkdirSync(path.join(root, identity));
    for (const n of numbers) {
      const file = `${identity}${n}.png`;
      symlinkSync(sharedPath(...BBT, identity, file), path.join(root, identity, file));
    }
  }
  return root;
}

describeWithSharedData('recognition on bbt: MTCNN + face-api embedder (onnx)', [BBT.join('/')], () => {
  let detector: FaceDetector;
  let embedder: FaceEmbedder;
  let gallery: FileGallery;
  let probes: LabelledProbe[];

  beforeAll(async () => {
    const provider = createOnnxProvider({ modelStore: await sharedMirrorStore() });
    embedder = await provider.embedder('faceapi-resnet');
    detector = provider.detector('mtcnn');
    const enrolled = await enrollGallery({ root: subset([1, 2]), detector, embedder });
    expect(enrolled.skipped).toEqual([]);
    // The threshold comes from the enrolled examples alone (leave-one-out), never from the probes.
    gallery = calibrateThresholdLeaveOneOut(enrolled.gallery, { targetFar: 0.01 }).gallery;
    const probeSet = await enrollGallery({ root: subset([3, 4]), detector, embedder });
    probes = probeSet.gallery.names.flatMap((identity) =>
      probeSet.gallery.examples(identity).map((e) => ({ identity, embedding: e.embedding })),
    );
    expect(probes).toHaveLength(16);
  });

  it('identifies at least 15 of the 16 probes (images 3–4) from images 1–2', async () => {
    const matches = await gallery.match(
      probes.map((p) => p.embedding),
      { topK: 2, threshold: 4 },
    );
    const correct = matches.filter((m, i) => m.identity === probes[i]!.identity).length;
    const margins = matches.map((m) => m.candidates[1]!.distance - m.candidates[0]!.distance);
    console.log(
      `bbt: ${correct}/16 probes identified; threshold ${gallery.threshold.toFixed(4)}; nearest distances ` +
        `${Math.min(...matches.map((m) => m.distance)).toFixed(3)}–${Math.max(...matches.map((m) => m.distance)).toFixed(3)}; ` +
        `margin to the second identity min ${Math.min(...margins).toFixed(3)}, mean ${(margins.reduce((a, b) => a + b) / 16).toFixed(3)}`,
    );
    expect(correct).toBeGreaterThanOrEqual(15);
  });

  it('answers unknown for a removed identity at the calibrated threshold; the others stay correct', async () => {
    const at = await gallery.match(probes.map((p) => p.embedding));
    const known = at.filter((m, i) => m.identity === probes[i]!.identity).length;
    console.log(
      `bbt at the calibrated threshold ${gallery.threshold.toFixed(4)}: ${known}/16 named correctly`,
    );
    for (const removed of gallery.names) {
      const without = gallery.withoutIdentities([removed]);
      const results = await without.match(probes.map((p) => p.embedding));
      probes.forEach((p, i) => {
        if (p.identity === removed) expect(results[i]!.identity).toBe('unknown');
        else expect(results[i]!.identity).toBe(at[i]!.identity);
      });
    }
    expect(known).toBeGreaterThanOrEqual(14);
  });

  it('refuses to match with a different embedder, naming both models', async () => {
    const other = {
      ...embedder,
      modelId: 'inception-resnet-v1/vggface2',
      weightsSha256: 'f'.repeat(64),
      dimension: 512,
    };
    expect(() => gallery.assertCompatible(other)).toThrow(EmbedderMismatchError);
    expect(() => gallery.assertCompatible(other)).toThrow(
      /faceapi-resnet[\s\S]*inception-resnet-v1\/vggface2|inception-resnet-v1\/vggface2[\s\S]*faceapi-resnet/,
    );
  });

  it('reports the files it skips when enrolling the whole face-api.js folder', async () => {
    const result = await enrollGallery({ root: sharedPath('faces', 'face-api.js'), detector, embedder });
    const reasons = Object.fromEntries(result.skipped.map((s) => [s.file, s.reason]));
    console.log('skipped:', JSON.stringify(reasons));
    // The group photos sit directly under the root (no identity folder); test/ holds white.png (no face)
    // and faces.jpg (several faces).
    expect(reasons).toMatchObject({
      'bbt1.jpg': 'not in an identity folder',
      'bbt3.jpg': 'not in an identity folder',
      'bbt5.jpg': 'not in an identity folder',
      'test/white.png': 'no face',
      'test/faces.jpg': 'several faces',
      'bbt/amy/amy1.png': 'nested folder',
    });
    expect(result.skipped).toHaveLength(37);
  });
});
