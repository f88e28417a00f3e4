import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { InvalidOptionsError } from './errors.js';
import { importOptionalPackage } from './optional-import.js';
import { MODELS } from './registry/registry.js';

let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('names the package to install: the one asked for when it is missing, else the peer it imports', async () => {
  const missing = await importOptionalPackage(
    'facerec-no-such-package',
    (name) => import(name),
    'provider',
    'provider "x"',
  ).catch((e: unknown) => e);
  expect(InvalidOptionsError.isInstance(missing)).toBe(true);
  expect((missing as Error).message).toBe(
    'provider: provider "x" needs facerec-no-such-package; install it (npm install facerec-no-such-package)',
  );

  // With the packages best installed beside it (the tfjs provider's wasm backend), named in the same command.
  const tfjs = await importOptionalPackage(
    'facerec-no-such-package',
    (name) => import(name),
    'provider',
    'provider "tfjs"',
    MODELS.provider('tfjs').installWith,
  ).catch((e: unknown) => e);
  expect((tfjs as Error).message).toBe(
    'provider: provider "tfjs" needs facerec-no-such-package; install it with its WebAssembly backend (without it or @tensorflow/tfjs-node, tfjs runs on its pure-JavaScript backend, 10–50× slower): npm install facerec-no-such-package @tensorflow/tfjs-backend-wasm',
  );

  // Installed, but a package it imports (a peer dependency) is not: that one is named.
  dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-optional-'));
  const pkg = path.join(dir, 'node_modules', 'fake-provider');
  await mkdir(pkg, { recursive: true });
  await writeFile(
    path.join(pkg, 'package.json'),
    '{"name":"fake-provider","type":"module","main":"index.js"}',
  );
  await writeFile(path.join(pkg, 'index.js'), "import 'facerec-absent-peer';\nexport const x = 1;\n");
  const peer = await importOptionalPackage(
    'fake-provider',
    () => import(pathToFileURL(path.join(pkg, 'index.js')).href),
    'provider',
    'provider "fake"',
  ).catch((e: unknown) => e);
  expect((peer as Error).message).toBe(
    'provider: provider "fake" needs facerec-absent-peer, which fake-provider imports and which is not installed (a peer dependency): install it (npm install facerec-absent-peer)',
  );

  // Any other failure is the module's own.
  await writeFile(path.join(pkg, 'broken.js'), 'throw new Error("boom at import");\n');
  await expect(
    importOptionalPackage(
      'fake-provider',
      () => import(pathToFileURL(path.join(pkg, 'broken.js')).href),
      'provider',
      'provider "fake"',
    ),
  ).rejects.toThrow('boom at import');
});
