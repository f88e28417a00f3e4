import { readFile } from 'node:fs/promises';
import { BUILTIN_PROVIDERS, decodeImage, MODELS, ModelRegistry } from '@facerec/framework';
import {
  describeWithSharedData,
  fakeDetector,
  fakeDetectorDescription,
  sharedPath,
} from '@facerec/framework/testing';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { cliWith } from './helpers.js';

// A registry whose default detector is not MTCNN: its options are its own (strict, as the docs ask), and the
// CLI's MTCNN flags are not its.

/** One face in the middle of every frame, half its width: a provider-free detector with a strict schema. */
const middle = fakeDetectorDescription<{ minSide?: number }>({
  id: 'middle',
  options: z.strictObject({ minSide: z.number().int().min(1).optional() }),
  load: () =>
    fakeDetector(({ width, height }) => [
      {
        box: [width / 4, height / 4, (3 * width) / 4, (3 * height) / 4],
        score: 0.99,
        landmarks: [
          [0.4 * width, 0.4 * height],
          [0.6 * width, 0.4 * height],
          [0.5 * width, 0.5 * height],
          [0.42 * width, 0.6 * height],
          [0.58 * width, 0.6 * height],
        ],
      },
    ]),
});
const registry = new ModelRegistry(
  [
    ...MODELS.detectorIds.map((id) => MODELS.detector(id)),
    ...MODELS.embedderIds.map((id) => MODELS.embedder(id)),
    middle,
  ],
  BUILTIN_PROVIDERS,
  { ...MODELS.defaults, detector: 'middle' },
);

const PHOTO = ['faces', 'face-api.js', 'bbt1.jpg'] as const;

describeWithSharedData(
  'facerec detect with a default detector of another registry',
  [PHOTO.join('/')],
  () => {
    it('passes it none of MTCNN’s options (keepAll) unasked, and finds its faces', async () => {
      const run = await cliWith({ registry }, 'detect', sharedPath(...PHOTO), '--json');
      expect([run.code, run.exitCode], run.stderr).toEqual([0, undefined]);
      const { width, height } = await decodeImage(await readFile(sharedPath(...PHOTO)));
      const [row] = JSON.parse(run.stdout) as { faces: { box: number[] }[] }[];
      expect(row!.faces.map((f) => f.box)).toEqual([
        [width / 4, height / 4, (3 * width) / 4, (3 * height) / 4],
      ]);
    });

    it('recognize, gallery search and serve refuse --min-face-size for it at once, naming the flag', async () => {
      for (const command of [
        ['recognize', '--gallery', 'g.json'],
        ['gallery', 'search', 'g.json'],
        ['serve', '--gallery', 'g.json'],
      ]) {
        const args = command[0] === 'serve' ? command : [...command, sharedPath(...PHOTO)];
        const run = await cliWith({ registry }, ...args, '--min-face-size', '40');
        expect(run.code, run.stderr).toBe(2);
        expect(run.stderr).toContain('--min-face-size: the detector "middle" takes no minFaceSize option');
      }
    });

    it('refuses an MTCNN flag the detector takes no option for, naming both', async () => {
      for (const [flag, value, key] of [
        ['--factor', '0.8', 'factor'],
        ['--thresholds', '0.5,0.6,0.7', 'thresholds'],
        ['--min-face-size', '40', 'minFaceSize'],
      ] as const) {
        const run = await cliWith({ registry }, 'detect', sharedPath(...PHOTO), flag, value);
        expect(run.code).toBe(2);
        expect(run.stderr).toContain(
          `${flag}: the detector "middle" takes no ${key} option; leave ${flag} out`,
        );
        expect(run.stdout).toBe('');
      }
    });
  },
);
