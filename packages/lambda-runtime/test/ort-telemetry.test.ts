/**
 * onnxruntime-node 1.29+ records usage telemetry on Linux and macOS (a device identifier and an event database
 * under the user's cache folder, `.ses` and `mat-debug-<pid>.log` in the temporary folder) and sends it to
 * Microsoft, unless `ORT_DISABLE_TELEMETRY` is set when its first session starts (or `CI` is, which is why
 * this test removes `CI` from the child's environment). facerec turns it off unless the user chose: checked in
 * a fresh process with its own home and temporary folders, on the main thread and in the worker threads that
 * `serve --workers` and `detect --workers` use (a worker cannot switch it off itself), and against a child that
 * asked for telemetry, which must leave those files (so that this test can fail).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '@facerec/framework';
import { describeWithSharedData } from '@facerec/framework/testing';
import { afterAll, expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('./ort-telemetry-child.mjs', import.meta.url));
const scratch = mkdtempSync(path.join(tmpdir(), 'facerec-ort-telemetry-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the child with a fresh home and temporary folder; returns every file left in them. */
function filesLeft(mode: 'provider' | 'workers', telemetry: string | undefined): string[] {
  const root = path.join(scratch, `${mode}-${telemetry ?? 'default'}`);
  const [home, temp] = [path.join(root, 'home'), path.join(root, 'tmp')];
  mkdirSync(home, { recursive: true });
  mkdirSync(temp, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    TMPDIR: temp,
    // The models stay where the other tests converted them.
    FACEREC_CACHE_DIR: defaultCacheDir(),
  };
  delete env.CI;
  delete env.XDG_CACHE_HOME;
  delete env.ORT_DISABLE_TELEMETRY;
  if (telemetry !== undefined) env.ORT_DISABLE_TELEMETRY = telemetry;
  const out = execFileSync(process.execPath, [CHILD, mode], { encoding: 'utf8', env, timeout: 120_000 });
  expect(out).toContain(`warmed up (${mode})`);
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((name) => !['home', 'tmp'].includes(name))
    .sort();
}

describeWithSharedData('onnxruntime telemetry', ['models/upstream/pnet.pt'], () => {
  it('is off on the main thread', { timeout: 150_000 }, () => {
    expect(filesLeft('provider', undefined)).toEqual([]);
  });

  it('is off when the variable is set but empty (onnxruntime would take that as on)', {
    timeout: 150_000,
  }, () => {
    expect(filesLeft('provider', '')).toEqual([]);
  });

  it('is off in worker threads', { timeout: 150_000 }, () => {
    expect(filesLeft('workers', undefined)).toEqual([]);
  });

  it('stays on when the user asks for it (ORT_DISABLE_TELEMETRY=0)', { timeout: 150_000 }, () => {
    const left = filesLeft('provider', '0');
    expect(left).toContain(
      path.join('home', '.cache', 'Microsoft', 'DeveloperTools', '.onnxruntime', 'deviceid'),
    );
    // (Its `.ses` and `mat-debug-<pid>.log` in the temporary folder appear only some of the time.)
  });
});
