import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CACHE_DIR_ENV, MODELS, MODELS_MIRROR_ENV } from '@facerec/framework';
import { describeWithSharedData, readSyntheticReference, sharedPath } from '@facerec/framework/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeStandInMirror } from './fixtures/synthetic-checkpoint.js';

// The README's "Using the library" snippets, read from README.md (never copied here) and run as written,
// once per embedder. File names in the snippets stand for shared images; the embedder id is swapped.
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));
const BBT = ['faces', 'face-api.js', 'bbt'] as const;
const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';
const IDENTITIES = ['amy', 'bernadette', 'howard', 'leonard', 'penny', 'raj', 'sheldon', 'stuart'];

async function librarySnippets(): Promise<string[]> {
  const text = await readFile(README, 'utf8');
  const section = text.slice(
    text.indexOf('## Using the library'),
    text.indexOf('\n## ', text.indexOf('## Using the library') + 1),
  );
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The snippet with file names pointing at shared data, the embedder swapped, and its top-level consts exported. */
function prepare(snippet: string, embedder: string, people: string): string {
  const files: Record<string, string> = {
    "'group.jpg'": JSON.stringify(sharedPath('faces', 'face-api.js', 'bbt3.jpg')),
    "'amy-1.jpg'": JSON.stringify(sharedPath(...BBT, 'amy', 'amy3.png')),
    "'amy-2.jpg'": JSON.stringify(sharedPath(...BBT, 'amy', 'amy4.png')),
    "'people'": JSON.stringify(people),
  };
  let code = snippet.replace(
    /(embedder\(|embedder: )'(inception-resnet-v1|faceapi-resnet)'/g,
    `$1'${embedder}'`,
  );
  for (const [name, file] of Object.entries(files)) code = code.replaceAll(name, file);
  const names = [...code.matchAll(/^const (?:(\w+)|\{ ([\w, ]+) \})/gm)].flatMap((m) =>
    m[1] ? [m[1]] : m[2]!.split(',').map((n) => n.trim()),
  );
  return `${code}\nexport { ${names.join(', ')} };\n`;
}

describeWithSharedData(
  'README library snippets',
  [BBT.join('/'), 'models/upstream/pnet.pt', REFERENCE],
  () => {
    let work: string;
    let people: string;
    let snippets: string[];

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-readme-'));
      // A mirror with MTCNN's weights and a stand-in InceptionResnetV1 checkpoint, and a fresh cache.
      const { keys } = await readSyntheticReference(sharedPath(REFERENCE));
      vi.stubEnv(MODELS_MIRROR_ENV, await writeStandInMirror(path.join(work, 'mirror'), keys));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      people = path.join(work, 'people');
      for (const name of IDENTITIES) {
        await mkdir(path.join(people, name), { recursive: true });
        for (const n of [1, 2])
          await symlink(
            sharedPath(...BBT, name, `${name}${n}.png`),
            path.join(people, name, `${name}${n}.png`),
          );
      }
      snippets = await librarySnippets();
      vi.spyOn(console, 'log').mockImplementation(() => undefined);
    });

    afterAll(async () => {
      vi.restoreAllMocks();
      vi.unstubAllEnvs();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('finds the two snippets', () => {
      expect(snippets).toHaveLength(2);
    });

    describe.each(MODELS.embedderIds)('with %s', (embedder) => {
      const run = async (i: number) => {
        const file = path.join(work, `snippet-${embedder}-${i}.ts`);
        await writeFile(file, prepare(snippets[i]!, embedder, people));
        return (await import(/* @vite-ignore */ file)) as Record<string, unknown>;
      };
      const dimension = MODELS.embedder(embedder).dimension;

      it('snippet 1: every face of the group photo, embedded', { timeout: 120_000 }, async () => {
        const { faces } = (await run(0)) as { faces: { face: { box: number[] }; embedding: Float32Array }[] };
        expect(faces).toHaveLength(5); // bbt3.jpg shows five people
        for (const { embedding } of faces) {
          expect(embedding).toHaveLength(dimension);
          expect(Math.hypot(...embedding)).toBeCloseTo(1, 5);
        }
      });

      it('snippet 2: enroll, calibrate, recognize, verify', { timeout: 120_000 }, async () => {
        const { gallery, answers, check } = (await run(1)) as {
          gallery: { names: readonly string[]; threshold: number; embedder: { modelId: string } };
          answers: { identity: string; distance: number }[];
          check: { verified: boolean; distance: number; thresholdSource: string };
        };
        expect(gallery.names).toEqual(IDENTITIES);
        expect(gallery.embedder.modelId).toBe(
          embedder === 'faceapi-resnet' ? 'faceapi-resnet' : 'inception-resnet-v1/vggface2',
        );
        expect(answers).toHaveLength(5);
        for (const a of answers) expect(Number.isFinite(a.distance)).toBe(true);
        expect(check.thresholdSource).toBe('gallery');
        expect(Number.isFinite(check.distance)).toBe(true);
        // Real weights (face-api's): two other photos of Amy are the same person at the calibrated threshold.
        if (embedder === 'faceapi-resnet')
          expect(check.verified, `distance ${check.distance} vs threshold ${gallery.threshold}`).toBe(true);
      });
    });
  },
);
