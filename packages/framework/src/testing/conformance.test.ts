import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

interface Report {
  testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[];
}

/**
 * The conformance suites, run on plugins made for the purpose (`__fixtures__/plugins.fixture.ts`) in a vitest of
 * their own: the well-behaved ones pass every test, and each broken one fails the test that guards against its
 * fault (found by plugin authors' walks: each of these passed the suites before).
 */
describe('the conformance suites', () => {
  it('pass well-behaved plugins and fail each broken one on the test that guards against its fault', async () => {
    const fixtures = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
    const vitest = path.join(
      path.dirname(createRequire(import.meta.url).resolve('vitest/package.json')),
      'vitest.mjs',
    );
    const out = mkdtempSync(path.join(tmpdir(), 'facerec-conformance-'));
    try {
      const report = path.join(out, 'report.json');
      await promisify(execFile)(
        process.execPath,
        [vitest, 'run', '--config', 'vitest.fixture.config.ts', '--reporter=json', `--outputFile=${report}`],
        { cwd: fixtures, env: { ...process.env, CI: '' }, timeout: 120_000 },
      ).catch(() => undefined); // it fails, as the broken plugins must: the report says how
      const results = (JSON.parse(readFileSync(report, 'utf8')) as Report).testResults.flatMap(
        (file) => file.assertionResults,
      );
      const failed = (suite: string) =>
        results
          .filter((r) => r.ancestorTitles.some((t) => t.endsWith(`: ${suite}`)) && r.status !== 'passed')
          .map((r) => r.title);
      const ran = (suite: string) =>
        results.filter((r) => r.ancestorTitles.some((t) => t.endsWith(`: ${suite}`)));
      for (const suite of ['good detector', 'good embedder']) {
        expect(ran(suite).length, suite).toBeGreaterThan(5);
        expect(failed(suite), suite).toEqual([]);
      }
      // Faces in the wrong place also fail expectedFaces, where the suite is told where they are.
      const misplaced = [
        'finds well-formed faces, largest first',
        'finds the faces where they are (expectedFaces), when the caller says where',
      ];
      expect(failed('boxes outside the image')).toEqual(misplaced);
      expect(failed('landmarks at the origin')).toEqual(['finds well-formed faces, largest first']);
      expect(failed('black crops')).toEqual(["cuts crops only when asked, with the caller's crop policy"]);
      expect(failed('crop policy ignored')).toEqual([
        "cuts crops only when asked, with the caller's crop policy",
      ]);
      expect(failed('crop size unlike the input size')).toEqual([
        'declares its contract version, model, dimension and preprocessing',
      ]);
      expect(failed('normalised coordinates')).toEqual(misplaced);
      expect(failed('half-scale boxes')).toEqual([
        'finds the faces where they are (expectedFaces), when the caller says where',
      ]);
      expect(failed('embedder changing its input')).toContain('leaves the crops it is given unchanged');
      expect(failed('embedder marking its input')).toContain('leaves the crops it is given unchanged');
      expect(failed('constant embedder')).toEqual([
        'gives different faces different vectors (the vector depends on the face)',
      ]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
