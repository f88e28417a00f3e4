import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';

/** Environment variable that points tests at the shared reference data (weights, images, references). */
export const SHARED_DIR_ENV = 'FACEREC_SHARED_DIR';

/**
 * The shared data directory: `$FACEREC_SHARED_DIR`, else `../shared` beside the repository root (found by
 * walking up from the working directory to the folder holding `package-lock.json`).
 */
export function sharedDir(): string {
  const fromEnv = process.env[SHARED_DIR_ENV];
  if (fromEnv) return path.resolve(fromEnv);
  let dir = process.cwd();
  for (;;) {
    if (existsSync(path.join(dir, 'package-lock.json'))) return path.resolve(dir, '..', 'shared');
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(process.cwd(), '..', 'shared');
    dir = parent;
  }
}

/** Absolute path of a file inside the shared data directory. */
export function sharedPath(...parts: string[]): string {
  return path.join(sharedDir(), ...parts);
}

/**
 * `describe` for suites that need shared data. When the files are present the suite runs; when they are
 * missing it fails under `CI=true` and is skipped elsewhere, with a visible notice on stderr.
 */
export function describeWithSharedData(name: string, required: readonly string[], fn: () => void): void {
  const missing = required.filter((p) => !existsSync(sharedPath(p)));
  describeWhenAvailable(
    name,
    'its shared data',
    missing.length === 0
      ? undefined
      : `shared data missing in ${sharedDir()} (set ${SHARED_DIR_ENV}): ${missing.join(', ')}`,
    fn,
  );
}

/**
 * `describe` for a suite that needs something a checkout may lack (shared data, an optional package). With
 * `missing` undefined the suite runs; otherwise it fails under `CI=true` (one test, named after
 * `requirement`, that throws `missing`) and is skipped elsewhere, with a visible notice on stderr.
 *
 * @example
 * describeWhenAvailable('wasm suite', 'its backend', installed ? undefined : 'not installed', () => {});
 */
export function describeWhenAvailable(
  name: string,
  requirement: string,
  missing: string | undefined,
  fn: () => void,
): void {
  if (missing === undefined) {
    describe(name, fn);
    return;
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      it(`has ${requirement}`, () => {
        throw new Error(missing);
      });
    });
    return;
  }
  process.stderr.write(`\n[facerec] SKIPPING "${name}": ${missing}\n`);
  describe.skip(name, fn);
}
