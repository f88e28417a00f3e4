import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CACHE_DIR_ENV,
  decodeImage,
  defineDetector,
  type FaceDetector,
  MODELS,
  MODELS_MIRROR_ENV,
  ModelUnavailableError,
  MTCNN,
  SPECIFICATION_VERSION,
} from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cli, cliChild, cliWith, interruptedJsonLines } from './helpers.js';

interface DetectJson {
  image: string;
  width: number;
  height: number;
  faces: { box: number[]; score: number; landmarks: number[][]; crop?: string }[];
  error?: string;
}

describeWithSharedData(
  'facerec detect',
  ['faces/face-api.js/bbt3.jpg', 'faces/face-api.js/bbt/raj/raj2.png', 'models/upstream/pnet.pt'],
  () => {
    beforeAll(async () => {
      vi.stubEnv(CACHE_DIR_ENV, await mkdtemp(path.join(tmpdir(), 'facerec-cli-')));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
    });
    afterAll(() => {
      vi.unstubAllEnvs();
    });

    const group = () => sharedPath('faces', 'face-api.js', 'bbt3.jpg');

    it('prints every face as JSON, largest first, and writes the crops', async () => {
      const crops = await mkdtemp(path.join(tmpdir(), 'facerec-crops-'));
      const run = await cli('detect', group(), '--json', '--crops-dir', crops);
      expect(run.code).toBe(0);
      const [result] = JSON.parse(run.stdout) as DetectJson[];
      expect(result).toMatchObject({ image: group(), width: 594, height: 383 });
      expect(result!.faces).toHaveLength(5);
      const areas = result!.faces.map((f) => (f.box[2]! - f.box[0]!) * (f.box[3]! - f.box[1]!));
      expect([...areas].sort((a, b) => b - a)).toEqual(areas);
      for (const f of result!.faces) expect(f.landmarks).toHaveLength(5);
      const files = (await readdir(crops)).sort();
      expect(files).toEqual(['bbt3_0.png', 'bbt3_1.png', 'bbt3_2.png', 'bbt3_3.png', 'bbt3_4.png']);
      const crop = await decodeImage(await readFile(path.join(crops, files[0]!)));
      expect([crop.width, crop.height]).toEqual([160, 160]); // the default embedder's (InceptionResnetV1's) crop
    });

    it("--embedder cuts the crops that embedder takes (face-api's: 150×150 squares)", async () => {
      const crops = await mkdtemp(path.join(tmpdir(), 'facerec-crops-'));
      const run = await cli('detect', group(), '--crops-dir', crops, '--embedder', 'faceapi-resnet');
      expect(run.code).toBe(0);
      const crop = await decodeImage(await readFile(path.join(crops, 'bbt3_0.png')));
      expect([crop.width, crop.height]).toEqual([150, 150]);
      expect(run.stderr).not.toContain('no effect');
      // Without --crops-dir the flag changes nothing: said, not silently ignored.
      const alone = await cli('detect', group(), '--embedder', 'faceapi-resnet');
      expect(alone.code).toBe(0);
      expect(alone.stderr).toContain('warning: --embedder only chooses the crops --crops-dir writes');
    });

    it('gives the same faces with --provider tfjs', async () => {
      const onnx = JSON.parse((await cli('detect', group(), '--json')).stdout) as DetectJson[];
      const tfjs = await cli('detect', group(), '--json', '--provider', 'tfjs');
      expect(tfjs.code).toBe(0);
      const faces = (JSON.parse(tfjs.stdout) as DetectJson[])[0]!.faces;
      expect(faces).toHaveLength(onnx[0]!.faces.length);
      faces.forEach((f, i) => {
        f.box.forEach((v, k) => {
          expect(Math.abs(v - onnx[0]!.faces[i]!.box[k]!)).toBeLessThanOrEqual(0.01);
        });
      });
    });

    it('reports an unreadable image on stderr, keeps the others, exits 2', async () => {
      const run = await cli('detect', sharedPath('models', 'upstream', 'pnet.pt'), group(), '--json');
      const results = JSON.parse(run.stdout) as DetectJson[];
      expect(results[0]!.error).toMatch(/image/i);
      expect(results[1]!.faces).toHaveLength(5);
      expect(run.exitCode).toBe(2);
      expect(run.stderr).not.toMatch(/\n\s+at /);
      // The count closes the run: after thousands of lines the failure is far up.
      expect(run.stderr).toMatch(/\n2 images: 1 done, 1 could not be used \(each named above; exit 2\)\n$/);
    });

    it('refuses a file over the byte limit before reading it, and a device once past the limit (exit 2)', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'facerec-huge-'));
      try {
        // Sparse: 3 GiB on paper, nothing on disk; reading it whole took seconds and failed past Node's 2 GiB.
        const huge = path.join(dir, 'huge.jpg');
        await writeFile(huge, '');
        await truncate(huge, 3 * 2 ** 30);
        const devices = existsSync('/dev/zero') ? ['/dev/zero'] : [];
        const run = await cli('detect', huge, ...devices, group(), '--json');
        expect([run.code, run.exitCode]).toEqual([0, 2]);
        const results = JSON.parse(run.stdout) as DetectJson[];
        expect(results[0]!.error).toBe(
          `cannot read ${huge}: Image too large: ${3 * 2 ** 30} bytes exceeds the limit of 10485760 bytes; resize or recompress it (--max-image-bytes goes up to 67108864)`,
        );
        if (devices.length) {
          expect(results[1]!.error).toBe(
            'cannot read /dev/zero: Image too large: more than the limit of 10485760 bytes (not a regular file; read no further); --max-image-bytes raises the limit (up to 67108864)',
          );
        }
        expect(results.at(-1)!.faces).toHaveLength(5);
        expect(run.stderr).not.toMatch(/unexpected error|\n\s+at /);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('reads an image from standard input given as -', { timeout: 90_000 }, async () => {
      // A process of its own: `-` is the process's standard input.
      const run = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'packages/cli/src/bin.ts', 'detect', '-', group(), '--json'],
        {
          cwd: fileURLToPath(new URL('../../..', import.meta.url)),
          input: await readFile(group()),
          encoding: 'utf8',
          timeout: 75_000,
        },
      );
      expect(run.status, run.stderr).toBe(0);
      const [piped, named] = JSON.parse(run.stdout) as DetectJson[];
      expect(piped!.image).toBe('-');
      expect(piped!.faces).toEqual(named!.faces);
      expect(piped!.faces).toHaveLength(5);
    });

    it('goes on when stderr is closed (`2> >(head -1)`): every result on stdout, exit 0', {
      timeout: 90_000,
    }, async () => {
      // A process of its own, whose stderr pipe this end closes at once: its messages meet EPIPE. Before, the
      // unhandled error ended the run with exit 1 and its stdout cut short.
      const child = cliChild('detect', group(), group(), group(), '--json');
      child.stderr.destroy();
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      const [code] = (await once(child, 'close')) as [number | null];
      expect(code).toBe(0);
      const results = JSON.parse(stdout) as DetectJson[];
      expect(results.map((r) => r.faces.length)).toEqual([5, 5, 5]);
    });

    it('ends normally when stdout is closed part-way (`--jsonl --workers 2 | head -1`): the images in flight end, no more start', {
      timeout: 90_000,
    }, async () => {
      // Exiting at the first EPIPE, under inference on the worker threads, aborted the process now and then
      // (SIGABRT, "terminate called after throwing an instance of 'Napi::Error'").
      const child = cliChild('detect', ...Array(120).fill(group()), '--jsonl', '--workers', '2');
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      let lines = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        lines += chunk;
        if (lines.includes('\n')) child.stdout.destroy(); // as `head -1` does after its line
      });
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      expect([code, signal], stderr).toEqual([0, null]);
      expect(stderr).not.toMatch(/terminate called|Napi::Error/);
      // It stopped early: the progress never reached the end.
      expect(stderr).not.toContain('detecting: 120/120');
    });

    it('a late EPIPE, after the run but while its worker threads close, does not end the process under them', () => {
      // The run over, the command releases the workers' models: an EPIPE then ended the process at once, under
      // them (SIGABRT, once in a CI run). In a process of its own: the reader gone stays gone.
      const script = [
        "import { MODELS } from '@facerec/framework';",
        "import { stdoutReaderGone } from './packages/cli/src/images.ts';",
        "import { imageCommandProvider } from './packages/cli/src/providers.ts';",
        "const opts = { provider: 'onnx', workers: '1' };",
        "const { workers, close } = await imageCommandProvider({ registry: MODELS }, 'detect', opts, 2);",
        'const whileOpen = stdoutReaderGone();',
        'await close();',
        'console.log(JSON.stringify([workers, whileOpen, stdoutReaderGone()]));',
      ].join('\n');
      const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: fileURLToPath(new URL('../../..', import.meta.url)),
        encoding: 'utf8',
      });
      // One worker thread open: the reader gone does not end the process; closed, it may.
      expect(JSON.parse(run.stdout), run.stderr).toEqual([1, true, false]);
    });

    it('says that nothing was written when --json output is interrupted (Ctrl-C), and ends by the signal', {
      timeout: 90_000,
    }, async () => {
      const child = cliChild('detect', ...Array(60).fill(group()), '--json');
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        // Once the progress shows images done: interrupted in the middle of the run.
        if (/detecting: [1-9]\d*\/60/.test(stderr)) child.kill('SIGINT');
      });
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      expect([code, signal]).toEqual([null, 'SIGINT']);
      expect(stderr).toMatch(
        /\ninterrupted after \d+ of 60 images: no results printed \(--json prints them at the end; --jsonl as each image is done\): nothing written\n$/,
      );
      expect(stdout).toBe('');
    });

    it('says how far a text-output run got when interrupted (Ctrl-C), and ends by the signal', {
      timeout: 90_000,
    }, async () => {
      const crops = await mkdtemp(path.join(tmpdir(), 'facerec-crops-'));
      const child = cliChild('detect', ...Array(240).fill(group()), '--crops-dir', crops);
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        // Once an image has its line: interrupted early in the run (it used to end unsaid). 240 images leave
        // the signal time to arrive before the end on a busy machine.
        if (/: 5 faces/.test(stderr) && !child.killed) child.kill('SIGINT');
      });
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      expect([code, signal]).toEqual([null, 'SIGINT']);
      expect(stderr).toMatch(
        /\ninterrupted after \d+ of 240 images: their results are printed above; the crops \(in [^)]+\) of the images done are written \(and of some in progress\)\n$/,
      );
    });

    it('--jsonl prints the row of each image as it is done: a run interrupted part-way keeps the rows of those done', {
      timeout: 90_000,
    }, async () => {
      const rows = await interruptedJsonLines<{ image: string; faces: unknown[] }>(
        240,
        'detect',
        ...Array(240).fill(group()),
        '--jsonl',
      );
      for (const row of rows) expect([row.image, row.faces.length]).toEqual([group(), 5]);
      // Both at once is a usage error.
      const both = await cli('detect', group(), '--json', '--jsonl');
      expect(both.code).toBe(2);
      expect(both.stderr).toContain("option '--jsonl' cannot be used with option '--json'");
    });

    it('refuses - given twice (standard input holds one image; the second read found it empty)', async () => {
      for (const args of [
        ['detect', '-', group(), '-'],
        ['verify', '-', '-'],
      ]) {
        const run = await cli(...args);
        expect([run.code, run.stderr]).toEqual([
          2,
          `facerec: ${args[0]}: - (standard input) can be given once: it holds one image\n`,
        ]);
      }
    });

    it('reports a missing file as bad input (exit 2) and still detects the other images', async () => {
      const run = await cli('detect', '/nonexistent/x.jpg', group(), '--json');
      expect([run.code, run.exitCode]).toEqual([0, 2]);
      const results = JSON.parse(run.stdout) as DetectJson[];
      expect(results.map((r) => r.error)).toEqual([
        'cannot read /nonexistent/x.jpg: no such file',
        undefined,
      ]);
      expect(results[1]!.faces).toHaveLength(5);
      expect(run.stderr).not.toMatch(/unexpected error|\n\s+at /);
      // FACEREC_DEBUG adds the stack trace here too, as the README says of every error.
      vi.stubEnv('FACEREC_DEBUG', '1');
      try {
        const debug = await cli('detect', '/nonexistent/x.jpg');
        expect(debug.stderr).toContain('cannot read /nonexistent/x.jpg: no such file');
        expect(debug.stderr).toMatch(/\n\s+at /);
        // FACEREC_DEBUG=0 (or false, no, off) asks for none.
        vi.stubEnv('FACEREC_DEBUG', '0');
        expect((await cli('detect', '/nonexistent/x.jpg')).stderr).not.toMatch(/\n\s+at /);
      } finally {
        vi.unstubAllEnvs();
      }
    });

    it('reports a symbolic-link loop, a path through a file and a broken link in a folder per image (exit 2), names escaped', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'facerec-links-'));
      try {
        await symlink('loop-b.jpg', path.join(dir, 'loop-a.jpg'));
        await symlink('loop-a.jpg', path.join(dir, 'loop-b.jpg'));
        await mkdir(path.join(dir, 'folder'));
        await symlink(path.join(dir, 'gone.jpg'), path.join(dir, 'folder', 'dangling.jpg'));
        await copyFile(group(), path.join(dir, 'folder', 'group.jpg'));
        // A FIFO named like an image: said and left out (reading one nobody writes to would wait for ever).
        execFileSync('mkfifo', [path.join(dir, 'folder', 'pipe.jpg')]);
        const oddName = path.join(dir, 'two\nlines.jpg');
        await writeFile(oddName, 'not an image');
        const run = await cli(
          'detect',
          path.join(dir, 'loop-a.jpg'),
          path.join(group(), 'x.jpg'),
          path.join(dir, 'folder'),
          oddName,
          '--json',
        );
        // Each said as bad input, the group photo still detected (a loop ended the run with exit 1 before).
        expect([run.code, run.exitCode]).toEqual([0, 2]);
        const results = JSON.parse(run.stdout) as DetectJson[];
        expect(results.map((r) => r.error ?? `${r.faces.length} faces`)).toEqual([
          `cannot read ${dir}/loop-a.jpg: a broken link (a loop of symbolic links)`,
          `cannot read ${group()}/x.jpg: a part of its path is a file, not a folder`,
          `cannot read ${dir}/folder/dangling.jpg: a broken link (no such file)`,
          '5 faces',
          expect.stringMatching(/^Not an image/),
        ]);
        // One line per image on stderr: the newline in the name is written as \n.
        expect(run.stderr).toContain(`${dir}/two\\nlines.jpg: Not an image`);
        expect(run.stderr).toContain(
          `${dir}/folder/pipe.jpg: not a regular file (a FIFO, socket or device); left out\n`,
        );
        expect(run.stderr).not.toMatch(/unexpected error|\n\s+at /);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('takes folders: the images below them, in path order, hidden and other files left out; crops of two images of one name both kept', async () => {
      const root = await mkdtemp(path.join(tmpdir(), 'facerec-folder-'));
      const bbt = (who: string, n: number) =>
        sharedPath('faces', 'face-api.js', 'bbt', who, `${who}${n}.png`);
      await mkdir(path.join(root, 'b', '.hidden'), { recursive: true });
      await mkdir(path.join(root, 'a'), { recursive: true });
      await mkdir(path.join(root, 'empty'));
      await copyFile(bbt('amy', 1), path.join(root, 'a', 'x.png'));
      await copyFile(bbt('raj', 1), path.join(root, 'b', 'x.PNG'));
      // Named as the second x's crops would be: they get a name of their own, not its (they overwrote them).
      await mkdir(path.join(root, 'c'));
      await copyFile(bbt('howard', 1), path.join(root, 'c', 'x~2.png'));
      await copyFile(bbt('raj', 2), path.join(root, 'b', '.hidden', 'y.png'));
      await writeFile(path.join(root, 'b', 'notes.txt'), 'not an image');
      // A linked folder is not followed (this one would loop).
      await symlink(root, path.join(root, 'b', 'loop'));
      const crops = await mkdtemp(path.join(tmpdir(), 'facerec-crops-'));
      const run = await cli(
        'detect',
        root,
        '--json',
        '--crops-dir',
        crops,
        '--embedder',
        'faceapi-resnet',
        '--workers',
        '2',
      );
      expect([run.code, run.exitCode]).toEqual([0, undefined]);
      const results = JSON.parse(run.stdout) as DetectJson[];
      expect(results.map((r) => path.relative(root, r.image))).toEqual([
        path.join('a', 'x.png'),
        path.join('b', 'x.PNG'),
        path.join('c', 'x~2.png'),
      ]);
      expect(results.map((r) => r.faces.map((f) => path.basename(f.crop!)))).toEqual([
        ['x_0.png'],
        ['x~2_0.png'],
        ['x~2~2_0.png'],
      ]);
      expect((await readdir(crops)).sort()).toEqual(['x_0.png', 'x~2_0.png', 'x~2~2_0.png']);
      expect(run.stderr).toContain('detecting: 3/3');
      // Those ran on two worker threads; on the main thread the results are the same.
      const oneCrops = await mkdtemp(path.join(tmpdir(), 'facerec-crops-'));
      const one = await cli(
        'detect',
        root,
        '--json',
        '--crops-dir',
        oneCrops,
        '--embedder',
        'faceapi-resnet',
        '--workers',
        '0',
      );
      expect(JSON.parse(one.stdout.replaceAll(oneCrops, crops))).toEqual(results);
      // A crop that cannot be written (a folder at its name) fails its image, named, and the others still run.
      const blocked = await mkdtemp(path.join(tmpdir(), 'facerec-crops-'));
      await mkdir(path.join(blocked, 'x~2_0.png'));
      const failing = await cli('detect', root, '--json', '--crops-dir', blocked, '--workers', '0');
      expect([failing.code, failing.exitCode], failing.stderr).toEqual([0, 2]);
      expect(failing.stderr).toContain(
        `cannot write the crop ${path.join(blocked, 'x~2_0.png')}: a folder has its name`,
      );
      expect((JSON.parse(failing.stdout) as { faces?: unknown[] }[]).map((r) => r.faces?.length)).toEqual([
        1,
        undefined,
        1,
      ]);
      // A folder with no image in it or below is refused, naming it, before any model loads.
      const empty = await cli('detect', path.join(root, 'empty'));
      expect([empty.code, empty.stderr.trim()]).toEqual([
        2,
        `facerec: detect: ${path.join(root, 'empty')} is a folder without images (.jpg, .jpeg, .png, .webp, in it or below)`,
      ]);
      // One holding files of other types names them (a GIF is no image facerec reads).
      await mkdir(path.join(root, 'other', 'deeper'), { recursive: true });
      await writeFile(path.join(root, 'other', 'a.gif'), 'GIF89a');
      await writeFile(path.join(root, 'other', 'deeper', 'b.GIF'), 'GIF89a');
      await writeFile(path.join(root, 'other', 'README'), 'text');
      const other = await cli('detect', path.join(root, 'other'));
      expect([other.code, other.stderr.trim()]).toEqual([
        2,
        `facerec: detect: ${path.join(root, 'other')} is a folder without images (.jpg, .jpeg, .png, .webp, in it or below); it holds files of other types: 1 no extension, 2 .gif`,
      ]);
    });

    it('refuses a --crops-dir it cannot make before the workers start (it printed the error, then never exited)', async () => {
      const root = await mkdtemp(path.join(tmpdir(), 'facerec-crops-'));
      const file = path.join(root, 'a-file');
      await writeFile(file, 'in the way');
      for (const [dir, why] of [
        [file, 'is a file, not a folder'],
        [path.join(file, 'crops', 'x'), `a part of it, ${file}, is a file, not a folder`],
      ] as const) {
        const run = await cli('detect', group(), '--workers', '2', '--crops-dir', dir);
        expect([run.code, run.stderr.trim()]).toEqual([2, `facerec: detect: --crops-dir ${dir}: ${why}`]);
      }
    });

    it('refuses bad options with one clear line', async () => {
      const run = await cli('detect', group(), '--thresholds', '0.6,0.7');
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/--thresholds needs three numbers/);
      const provider = await cli('detect', group(), '--provider', 'mxnet');
      expect(provider.code).toBe(2);
      expect(provider.stderr).toMatch(/Allowed choices are onnx, tfjs/);
    });

    it('stops once with exit 1 when the detector cannot load (not bad input, not reported per image)', async () => {
      const unavailable = new ModelUnavailableError(
        'mtcnn-pnet',
        'Cannot download model "mtcnn-pnet" (test)',
      );
      const failing: FaceDetector = {
        specificationVersion: SPECIFICATION_VERSION,
        provider: 'onnx',
        modelId: 'mtcnn',
        ready: () => Promise.reject(unavailable),
        warmUp: () => Promise.reject(unavailable),
        detect: () => Promise.reject(unavailable),
        detectBatch: () => Promise.reject(unavailable),
        detectFaces: () => Promise.reject(unavailable),
        dispose: () => Promise.resolve(),
      };
      const registry = MODELS.with(defineDetector({ ...MTCNN, load: () => failing }));
      const run = await cliWith({ registry }, 'detect', group(), group());
      expect(run.code).toBe(1);
      expect(run.stderr.match(/Cannot download model "mtcnn-pnet"/g)).toHaveLength(1);
    });
  },
);
