import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FaceEmbedder } from '@facerec/framework';
import { encodeJpeg, MODELS } from '@facerec/framework';
import { describe, expect, it, vi } from 'vitest';
import {
  loadNote,
  numberFlag,
  pullProgressReporter,
  shownDistance,
  shownThreshold,
  workersFlag,
} from '../src/output.js';
import { imageCommandProvider } from '../src/providers.js';
import { cli, cliChild, freePort } from './helpers.js';

describe('shownDistance', () => {
  it('rounds to 4 decimals when that keeps the distance on its side of the threshold', () => {
    expect(shownDistance(0.2043456, 0.448)).toBe(0.2043);
    expect(shownDistance(0.4, 0.4)).toBe(0.4);
    expect(shownDistance(0.39996, 0.4)).toBe(0.4); // at or below the threshold either way: a match
    expect(shownDistance(0.2043456)).toBe(0.2043);
  });
  it('shows more decimals where 4 would put a distance above the threshold at or below it', () => {
    expect(shownDistance(0.40003, 0.4)).toBe(0.40003);
    expect(shownDistance(0.4000000004, 0.4)).toBe(0.4000000004); // 9 decimals cannot tell it apart: shown as it is
    expect(shownDistance(0.409015, 0.409012)).toBe(0.40902);
    expect(shownDistance(0.1234567891, 0.5, 6)).toBe(0.123457);
  });
});

describe('shownThreshold', () => {
  it('prints a calibrated threshold to 6 decimals, so that a distance printed beside it is on its side', () => {
    // The accuracy walk's case: a stranger 0.409977 from howard, unknown at the calibrated 0.4099739. Both were
    // printed 0.41 (the threshold as 0.4100), a distance equal to the threshold answered "unknown".
    const threshold = 0.40997391;
    expect(shownThreshold(threshold)).toBe(0.409974);
    expect(shownDistance(0.409977, threshold)).toBeGreaterThan(shownThreshold(threshold));
    expect(shownDistance(0.40997, threshold)).toBeLessThanOrEqual(shownThreshold(threshold));
    expect(shownThreshold(0.448)).toBe(0.448);
  });
});

describe('loadNote', () => {
  const withGraph = (graph: object) => ({ graph }) as unknown as FaceEmbedder;
  it('says a first conversion and which int8 calibration was used', () => {
    expect(loadNote(withGraph({ built: false }))).toBe('');
    expect(loadNote(withGraph({ built: true }))).toBe(' (first use: converted to ONNX and cached)');
    expect(loadNote(withGraph({ built: false, calibration: { folder: '/faces', images: 1 } }))).toBe(
      ' (int8 calibrated on /faces (1 image))',
    );
    expect(
      loadNote(
        withGraph({
          built: true,
          calibration: { folder: '/faces', images: 32, recorded: '2026-12-07T05:10:00.000Z' },
        }),
      ),
    ).toBe(
      ' (first use: converted to ONNX and cached; int8 calibration recorded in the cache on 2026-12-07, from /faces (32 images))',
    );
  });
});

describe('numberFlag', () => {
  it('takes decimal numbers in range and names the flag and the range otherwise', () => {
    expect(numberFlag('c', '--n', undefined)).toBeUndefined();
    expect(numberFlag('c', '--n', '0.25', { above: 0, below: 1 })).toBe(0.25);
    expect(numberFlag('c', '--n', ' 1e3 ', { integer: true, min: 1 })).toBe(1000);
    expect(numberFlag('c', '--n', '0', { min: 0, max: 3 })).toBe(0);
    const refused = (value: string, range: Parameters<typeof numberFlag>[3]) => {
      try {
        numberFlag('c', '--n', value, range);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error(`${value} was taken`);
    };
    expect(refused('abc', {})).toBe('c: --n must be a number, got "abc"');
    for (const value of ['', '0x10', 'Infinity', 'NaN', '1,5', '2.5']) {
      expect(refused(value, { integer: true, min: 1 })).toBe(
        `c: --n must be a positive integer, got "${value}"`,
      );
    }
    expect(refused('-1', { min: 0 })).toBe('c: --n must be a number ≥ 0, got "-1"');
    expect(refused('1', { above: 0, below: 1 })).toBe('c: --n must be a number > 0 and < 1, got "1"');
    expect(refused('70000', { integer: true, min: 0, max: 65535 })).toBe(
      'c: --n must be an integer from 0 to 65535, got "70000"',
    );
    expect(refused('x'.repeat(100), {})).toBe(`c: --n must be a number, got "${'x'.repeat(40)}"`);
  });
});

describe('usage errors', () => {
  it("are one line and a pointer to the command's --help, exit 2", async () => {
    const missing = await cli('enroll', 'faces');
    expect([missing.code, missing.stderr]).toEqual([
      2,
      "error: required option '--out <file>' not specified\n(see facerec enroll --help)\n",
    ]);
    const unknown = await cli('recognize', 'a.jpg', '--gallery', 'g.json', '--bogus');
    expect([unknown.code, unknown.stderr]).toEqual([
      2,
      "error: unknown option '--bogus'\n(see facerec recognize --help)\n",
    ]);
    // A misspelt required option: the unknown one is reported with the likely flag, not the missing one.
    const misspelt = await cli('recognize', 'a.jpg', '--galery', 'g.json');
    expect([misspelt.code, misspelt.stderr]).toEqual([
      2,
      "error: unknown option '--galery'\n(Did you mean --gallery?)\n(see facerec recognize --help)\n",
    ]);
    // The start of one option (commander suggests within a few edits only), with or without a value; a nested
    // command names its whole path.
    for (const flag of ['--min-face', '--min-face=30']) {
      const short = await cli('detect', 'a.jpg', flag, '30');
      expect([short.code, short.stderr]).toEqual([
        2,
        `error: unknown option '${flag}'\n(Did you mean --min-face-size?)\n(see facerec detect --help)\n`,
      ]);
    }
    // Before commander's guess by edit distance, which named --port for --wor.
    const start = await cli('serve', '--wor', '2');
    expect([start.code, start.stderr]).toEqual([
      2,
      "error: unknown option '--wor'\n(Did you mean --workers?)\n(see facerec serve --help)\n",
    ]);
    // The start of several: each of them.
    const ambiguous = await cli('gallery', 'add', 's.json', 'amy', 'a.jpg', '--max-image');
    expect([ambiguous.code, ambiguous.stderr]).toEqual([
      2,
      "error: unknown option '--max-image'\n(Did you mean one of --max-image-bytes, --max-image-pixels?)\n(see facerec gallery add --help)\n",
    ]);
    const root = await cli('--bogus');
    expect([root.code, root.stderr]).toEqual([2, "error: unknown option '--bogus'\n(see facerec --help)\n"]);
  });

  it('bad numbers in flags exit 2 naming the flag, before any model loads or request is sent', async () => {
    const cases: [string[], string][] = [
      [['client', '--url', 'notaurl', '--frames', '.'], 'client: --url must be an http:// or https:// URL'],
      [
        ['client', '--url', 'http://127.0.0.1:9', '--frames', '.', '--requests', '-3'],
        '--requests must be a positive integer',
      ],
      [
        ['client', '--url', 'http://127.0.0.1:9', '--frames', '.', '--concurrency', '0'],
        '--concurrency must be a positive integer',
      ],
      [
        ['client', '--url', 'http://127.0.0.1:9', '--frames', '.', '--timeout', 'x'],
        '--timeout must be a number > 0',
      ],
      [
        ['enroll', '.', '--out', 'g.json', '--threshold', '-1'],
        'enroll: --threshold must be a number > 0 and ≤ 2, got "-1"',
      ],
      [
        ['verify', 'a.jpg', 'b.jpg', '--threshold', 'abc'],
        'verify: --threshold must be a number > 0 and ≤ 2, got "abc"',
      ],
      // No distance between unit vectors exceeds 2: a larger threshold is a typo that would match everyone.
      [
        ['verify', 'a.jpg', 'b.jpg', '--threshold', '5'],
        'verify: --threshold must be a number > 0 and ≤ 2, got "5"',
      ],
      [
        ['detect', 'a.jpg', '--min-face-size', '-3'],
        'detect: --min-face-size must be an integer from 12 to 4096',
      ],
      [
        ['detect', 'a.jpg', '--thresholds', '2,0.7,0.7'],
        'detect: --thresholds needs three numbers a,b,c, each above 0 and below 1, got "2,0.7,0.7"',
      ],
      [['serve', '--gallery', 'g.json', '--port', 'abc'], 'serve: --port must be an integer from 0 to 65535'],
      [
        ['serve', '--gallery', 'g.json', '--threshold', '0'],
        'serve: --threshold must be a number > 0 and ≤ 2',
      ],
      [['serve', '--gallery', 'g.json', '--reload-seconds', 'x'], 'serve: --reload-seconds must be a number'],
      // `--token "$TOKEN"` with the variable unset would otherwise serve without auth.
      [['serve', '--gallery', 'g.json', '--token', ''], 'serve: --token is empty (an unset shell variable?)'],
      [
        ['client', '--url', 'http://127.0.0.1:9', '--frames', '.', '--token', ' '],
        'client: --token is empty',
      ],
      // Refused before the queue file, the workers and the models.
      [
        ['serve', '--gallery', 'g.json', '--provider', 'tfjs', '--precision', 'int8'],
        'serve: --precision int8 runs on the onnx provider only (--provider onnx), not tfjs',
      ],
      // Every command with both flags, before pulling a model (models prepare used to pull the weights first).
      [
        ['models', 'prepare', '--embedder', 'faceapi-resnet', '--provider', 'tfjs', '--precision', 'int8'],
        'models prepare: --precision int8 runs on the onnx provider only (--provider onnx), not tfjs',
      ],
      [
        ['embed', 'a.jpg', '--provider', 'tfjs', '--precision', 'int8'],
        'embed: --precision int8 runs on the onnx provider only (--provider onnx), not tfjs',
      ],
      // HTTP drops the spaces around a header value: such a token could never be sent.
      [
        ['client', '--url', 'http://127.0.0.1:9', '--frames', '.', '--token', 'secret '],
        'client: --token starts or ends with spaces, which no request can send; remove them',
      ],
      // The collections API's name is one path segment ('' served it nowhere), before the gallery is opened.
      [
        ['serve', '--gallery', 'g.json', '--token', 't', '--collection', ''],
        'serve: --collection is empty: it names /collections/<name>/faces',
      ],
      [
        ['serve', '--gallery', 'g.json', '--token', 't', '--collection', 'a/b'],
        'serve: --collection holds a "/": it names /collections/<name>/faces',
      ],
    ];
    for (const [args, message] of cases) {
      const run = await cli(...args);
      expect([run.code, run.stderr]).toEqual([2, expect.stringContaining(message)]);
      expect(run.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    }
    // The variable by the same rules, named.
    vi.stubEnv('FACEREC_LOCAL_TOKEN', '   ');
    try {
      const run = await cli('serve', '--gallery', 'g.json', '--host', '0.0.0.0');
      expect([run.code, run.stderr]).toEqual([
        2,
        expect.stringContaining('serve: $FACEREC_LOCAL_TOKEN holds only spaces; give the token, or unset it'),
      ]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('a folder of frames holding no image is refused, saying which layout the client reads', async () => {
    const frames = await mkdtemp(path.join(tmpdir(), 'facerec-frames-'));
    await writeFile(path.join(frames, 'notes.txt'), 'no image');
    const run = await cli('client', '--url', 'http://127.0.0.1:9', '--frames', frames, '--wait', '0');
    await rm(frames, { recursive: true });
    expect([run.code, run.stderr]).toEqual([
      2,
      `facerec: client: no images in ${frames}: give a folder <dir>/<identity>/*.{jpg,png,webp} (images directly in it are sent with no expected identity)\n`,
    ]);
  });

  it('help wraps at 80 columns, also beside long command names', async () => {
    for (const command of [['gallery'], ['--help'], ['gallery', 'add'], ['serve'], ['client']]) {
      const help = await cli(...command, ...(command[0] === '--help' ? [] : ['--help']));
      expect([help.code, help.stdout]).toEqual([0, expect.stringContaining('Usage: facerec')]);
      const long = help.stdout.split('\n').filter((line) => line.length > 80);
      // `facerec gallery --help` ran to 200 columns: commander does not wrap beside a term over 38 columns.
      expect(long, command.join(' ')).toEqual([]);
    }
  });

  it('a server that does not answer is a failure (exit 1), not bad input', async () => {
    const frames = await mkdtemp(path.join(tmpdir(), 'facerec-frames-'));
    await writeFile(
      path.join(frames, 'grey.jpg'),
      await encodeJpeg({ width: 4, height: 4, data: new Uint8Array(48).fill(128) }),
    );
    const port = await freePort();
    const run = await cli('client', '--url', `http://127.0.0.1:${port}`, '--frames', frames, '--wait', '0');
    // A port fetch never connects to is said at once, not after --wait, nor as "fetch failed".
    const blocked = await cli('client', '--url', 'http://127.0.0.1:6000', '--frames', frames, '--wait', '30');
    await rm(frames, { recursive: true });
    expect([run.code, run.stderr]).toEqual([
      1,
      `facerec: client: nothing answers at http://127.0.0.1:${port} (ECONNREFUSED) after waiting 0 s\n`,
    ]);
    expect([blocked.code, blocked.stderr]).toEqual([
      2,
      expect.stringContaining(`--url's port 6000 is one that fetch, the client's HTTP, never connects to`),
    ]);
  });

  it('gives up on a server that takes the connection and never answers, garbage collection or not', {
    timeout: 30_000,
  }, async () => {
    // fetch's hold on an AbortSignal.any of Ctrl-C and the 5 s limit was lost to garbage collection: such a
    // server then held the client for ever, without a word.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const work = await mkdtemp(path.join(tmpdir(), 'facerec-frames-'));
    await writeFile(
      path.join(work, 'grey.jpg'),
      await encodeJpeg({ width: 4, height: 4, data: new Uint8Array(48) }),
    );
    const gcLoop = path.join(work, 'gc-loop.mjs');
    await writeFile(gcLoop, 'setInterval(() => globalThis.gc(), 20).unref();\n');
    const command = ['packages/cli/src/bin.ts', 'client', '--url', url, '--frames', work, '--wait', '1'];
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', gcLoop, '--import', 'tsx', ...command],
      {
        cwd: fileURLToPath(new URL('../../..', import.meta.url)),
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [code] = (await once(child, 'close')) as [number | null];
    silent.close();
    await rm(work, { recursive: true });
    expect([code, stderr], stderr).toEqual([1, expect.stringContaining(`nothing answers at ${url}`)]);
  });

  it('says it waits for the server, and Ctrl-C while it waits stops it at once, saying that nothing was sent', async () => {
    const frames = await mkdtemp(path.join(tmpdir(), 'facerec-frames-'));
    await writeFile(
      path.join(frames, 'grey.jpg'),
      await encodeJpeg({ width: 4, height: 4, data: new Uint8Array(48).fill(128) }),
    );
    const url = `http://127.0.0.1:${await freePort()}`;
    const child = cliChild('client', '--url', url, '--frames', frames, '--wait', '60');
    let stderr = '';
    let signalledAt = 0;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (!signalledAt && stderr.includes('waiting up to')) {
        signalledAt = performance.now();
        child.kill('SIGINT');
      }
    });
    const [code] = (await once(child, 'close')) as [number | null];
    await rm(frames, { recursive: true });
    expect([code, stderr]).toEqual([
      130,
      `  waiting up to 60 s for ${url} to answer (ECONNREFUSED)\n` +
        `facerec client: stopped while waiting for ${url} to answer; no frame was sent\n`,
    ]);
    // At once: not after the next try, nor after the 60 s.
    expect(performance.now() - signalledAt).toBeLessThan(2000);
  });
});

/** What `run` writes to stderr, a string per write. */
function stderrOf(run: () => void): string[] {
  const lines: string[] = [];
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: string) => {
    lines.push(String(chunk));
    return true;
  }) as never);
  try {
    run();
  } finally {
    err.mockRestore();
  }
  return lines;
}

it('says when a pull replaces a corrupt cached copy', () => {
  const lines = stderrOf(() => {
    const reporter = pullProgressReporter();
    const start = {
      type: 'start',
      model: 'mtcnn-pnet',
      file: 'pnet.pt',
      source: 'mirror',
      from: '/m/pnet.pt',
    } as const;
    reporter.onProgress({ ...start, total: 10, replacing: true });
    reporter.onProgress({ ...start, model: 'mtcnn-rnet', total: 10 });
    reporter.stop();
  });
  expect(lines.join('')).toContain(
    'pulling mtcnn-pnet (pnet.pt) from mirror: /m/pnet.pt (the cached copy was corrupt)\n',
  );
  expect(lines.join('')).toContain('pulling mtcnn-rnet (pnet.pt) from mirror: /m/pnet.pt\n');
});

it('takes more --workers than cores, saying they will not run faster', () => {
  const cores = availableParallelism();
  expect(stderrOf(() => expect(workersFlag('serve', String(cores))).toBe(cores))).toEqual([]);
  const lines = stderrOf(() => expect(workersFlag('serve', String(cores + 1))).toBe(cores + 1));
  expect(lines).toEqual([
    `serve: --workers ${cores + 1} on ${cores} core${cores === 1 ? '' : 's'}: more inference threads than cores do not run faster, and each holds its own models ("auto": one per core, at most 4)\n`,
  ]);
});

it('starts no more worker threads than there are images', async () => {
  const context = { registry: MODELS };
  const one = await imageCommandProvider(context, 'detect', { provider: 'onnx', workers: '2' }, 1);
  try {
    expect(one.workers).toBe(1);
  } finally {
    await one.close();
  }
  const none = await imageCommandProvider(context, 'detect', { provider: 'onnx', workers: '2' }, 0);
  expect(none.workers).toBe(0);
  await none.close();
});
