import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeFolder, readFileUpTo, sweepStaleTemporaries, writeFileAtomic } from './fs.js';

describe('writeFileAtomic', () => {
  let dir: string;
  let n = 0;
  const fresh = () => path.join(dir, `file-${n++}.txt`);
  const temps = () => readdirSync(dir).filter((name) => name.endsWith('.tmp'));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-fs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    expect(temps()).toEqual([]);
  });

  async function* slowly(pieces: readonly (string | Uint8Array)[], failAfter?: number) {
    for (const [i, piece] of pieces.entries()) {
      if (i === failAfter) throw new Error('source failed');
      await new Promise((r) => setImmediate(r));
      yield piece;
    }
  }

  it.each([
    ['a string', 'héllo\n', 'héllo\n'],
    ['bytes', new Uint8Array([0x68, 0x69, 0x00, 0xff]), Buffer.from([0x68, 0x69, 0x00, 0xff])],
    ['an iterable of text and bytes', ['a', Buffer.from('b'), 'cd', 'é'], 'abcdé'],
    ['an async iterable', slowly(['x', new TextEncoder().encode('y'), 'z']), 'xyz'],
    ['no pieces', [], ''],
  ])('writes %s', async (_what, data, expected) => {
    const file = fresh();
    await writeFileAtomic(file, data);
    expect(await readFile(file)).toEqual(Buffer.from(expected));
  });

  it('joins text pieces past the flush size in order', async () => {
    const file = fresh();
    const pieces = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(4, '0')}${'.'.repeat(996)}`);
    await writeFileAtomic(file, pieces);
    expect(await readFile(file, 'utf8')).toBe(pieces.join(''));
  });

  it('replaces an existing file', async () => {
    const file = fresh();
    await writeFile(file, 'old content, longer than the new one');
    await writeFileAtomic(file, 'new');
    expect(await readFile(file, 'utf8')).toBe('new');
  });

  it("keeps a replaced file's permissions (a private gallery stays private), and replaces a link rather than following it", async () => {
    const file = fresh();
    await writeFile(file, 'private');
    await chmod(file, 0o600);
    await writeFileAtomic(file, 'still private');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // A link planted where a file is written (a crop in a shared folder) is replaced; its target is untouched.
    const target = fresh();
    await writeFile(target, 'not to be overwritten');
    const link = fresh();
    await symlink(target, link);
    await writeFileAtomic(link, 'crop');
    expect(await readFile(target, 'utf8')).toBe('not to be overwritten');
    expect((await lstat(link)).isSymbolicLink()).toBe(false);
    expect(await readFile(link, 'utf8')).toBe('crop');
  });

  // Only root may give a file another owner or a group it is no member of, so only root can set the stage.
  it.skipIf(process.getuid?.() !== 0)(
    "keeps a replaced file's group and owner (a gallery shared with a service account's group stays shared)",
    async () => {
      const file = fresh();
      await writeFile(file, 'shared');
      await chown(file, 65534, 65534);
      await chmod(file, 0o640);
      await writeFileAtomic(file, 'still shared');
      const after = await stat(file);
      expect([after.uid, after.gid, after.mode & 0o7777]).toEqual([65534, 65534, 0o640]);
    },
  );

  it('fsyncs the file before the rename and the directory after it', async () => {
    const file = fresh();
    const probe = await open(path.join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    await rm(path.join(dir, 'probe'));
    const seen: boolean[] = [];
    const realSync = proto.sync;
    vi.spyOn(proto, 'sync').mockImplementation(async function (this: unknown) {
      seen.push(existsSync(file));
      return realSync.call(this);
    });
    await writeFileAtomic(file, 'durable');
    // The file's fsync runs while `file` does not exist yet; the directory's once it does.
    expect(seen).toEqual(process.platform === 'win32' ? [false] : [false, true]);
  });

  describe('on failure: rejects, leaves the old file as it was and removes the temporary file', () => {
    const failures: [string, (file: string) => Promise<void>, RegExp][] = [
      [
        'the data source throws',
        (file) => writeFileAtomic(file, slowly(['a', 'b', 'c'], 2)),
        /source failed/,
      ],
      [
        'beforeRename throws',
        (file) =>
          writeFileAtomic(file, 'rejected', {
            beforeRename: () => {
              throw new Error('hash mismatch');
            },
          }),
        /hash mismatch/,
      ],
      [
        'an async beforeRename rejects',
        (file) =>
          writeFileAtomic(file, 'rejected', {
            beforeRename: () => Promise.reject(new Error('record failed')),
          }),
        /record failed/,
      ],
      [
        'the disk is full (said plainly, naming the file)',
        (file) =>
          writeFileAtomic(
            file,
            (async function* () {
              yield 'partial';
              throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
            })(),
          ),
        /^cannot write .*: no space left on its device \(ENOSPC\); it is unchanged$/,
      ],
    ];
    it.each(failures)('when %s', async (_when, write, message) => {
      const file = fresh();
      await writeFile(file, 'old');
      await expect(write(file)).rejects.toThrow(message);
      expect(await readFile(file, 'utf8')).toBe('old');
    });

    it('when the rename fails (a non-empty directory in the way)', async () => {
      const file = fresh();
      await mkdir(file);
      await writeFile(path.join(file, 'inside'), 'keep');
      await expect(writeFileAtomic(file, 'x')).rejects.toMatchObject({ code: expect.any(String) });
      expect(await readFile(path.join(file, 'inside'), 'utf8')).toBe('keep');
    });
  });

  it('creates missing parent directories', async () => {
    const file = path.join(dir, 'missing', 'deeper', 'g.json');
    await writeFileAtomic(file, 'x');
    expect(await readFile(file, 'utf8')).toBe('x');
  });

  it('lets concurrent writers of one file finish with one complete version', async () => {
    const file = fresh();
    const versions = Array.from({ length: 12 }, (_, i) => `${i}:${'v'.repeat(10_000 + i)}`);
    await Promise.all(versions.map((v) => writeFileAtomic(file, slowly([v.slice(0, 5000), v.slice(5000)]))));
    expect(versions).toContain(await readFile(file, 'utf8'));
  });
});

describe('writeFileAtomic when the process exits mid-write', () => {
  it.each([
    ['process.exit(3)', 3, null],
    ["process.kill(process.pid, 'SIGINT')", null, 'SIGINT'],
    ["process.kill(process.pid, 'SIGTERM')", null, 'SIGTERM'],
  ])(
    'removes the temporary file on %s (a download cut short leaves nothing behind)',
    async (end, status, signal) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-fs-exit-'));
      try {
        // A process of its own, as `process.exit` ends it: the write never finishes, the exit comes mid-way.
        const script = `
        import { readdirSync } from 'node:fs';
        import { writeFileAtomic } from ${JSON.stringify(new URL('./fs.ts', import.meta.url).href)};
        async function* endless() { for (;;) { yield 'x'.repeat(1 << 16); await new Promise((r) => setTimeout(r, 5)); } }
        void writeFileAtomic(${JSON.stringify(path.join(dir, 'model.onnx'))}, endless());
        setTimeout(() => { console.log(readdirSync(${JSON.stringify(dir)}).join(',')); END; }, 300);
      `;
        const run = spawnSync(
          process.execPath,
          ['--import', 'tsx', '--input-type=module', '-e', script.replace('END', end)],
          {
            encoding: 'utf8',
            timeout: 30_000,
          },
        );
        // Ended as it would have ended without the removal (a signal is not swallowed).
        expect([run.status, run.signal], run.stderr).toEqual([status, signal]);
        expect(run.stdout.trim()).toMatch(/^model\.onnx\.\d+\.[0-9a-f]+\.tmp$/);
        expect(readdirSync(dir)).toEqual([]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('makeFolder', () => {
  it('makes the folders missing, takes one that is there, and names a file in the way', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'facerec-folder-'));
    try {
      const deep = path.join(root, 'a', 'b', 'c');
      await makeFolder(deep);
      expect((await stat(deep)).isDirectory()).toBe(true);
      await makeFolder(deep);
      await makeFolder(path.relative(process.cwd(), path.join(root, 'a', 'd')));
      expect((await stat(path.join(root, 'a', 'd'))).isDirectory()).toBe(true);
      const file = path.join(root, 'file');
      await writeFile(file, 'x');
      await expect(makeFolder(file)).rejects.toMatchObject({ code: 'ENOTDIR', path: file });
      await expect(makeFolder(path.join(file, 'x', 'y'))).rejects.toMatchObject({
        code: 'ENOTDIR',
        path: file,
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it.runIf(existsSync('/proc/self'))(
    "fails where the system will not make a folder (Node's recursive mkdir spins there for ever)",
    async () => {
      await expect(makeFolder('/proc/facerec-no-such/x')).rejects.toMatchObject({ code: 'ENOENT' });
    },
    5_000,
  );
});

describe('sweepStaleTemporaries', () => {
  it("removes a dead writer's temporary after 2 minutes, a live one's only after an hour", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-sweep-'));
    try {
      // A process id that ran and has exited (reused only after the kernel wraps around, not within a test).
      const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
      const file = path.join(dir, 'model.onnx');
      const temp = (pid: number, minutesAgo: number) => {
        const name = `${file}.${pid}.${(pid * 1000 + minutesAgo).toString(16).padStart(12, '0')}.tmp`;
        writeFileSync(name, 'partial');
        const at = new Date(Date.now() - minutesAgo * 60_000);
        utimesSync(name, at, at);
        return name;
      };
      const deadOld = temp(dead, 3);
      const deadRecent = temp(dead, 1);
      const liveOld = temp(process.ppid, 30);
      const liveStale = temp(process.ppid, 61);
      await sweepStaleTemporaries(file);
      expect([deadOld, deadRecent, liveOld, liveStale].map((f) => existsSync(f))).toEqual([
        false,
        true,
        true,
        false,
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('readFileUpTo', () => {
  const tooLarge = (size: number | undefined) => new Error(`too large: ${size}`);

  it('reads a file up to the limit, refuses a larger one by its size, and a device once past the limit', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-read-'));
    try {
      const small = path.join(dir, 'small.bin');
      await writeFile(small, Buffer.from([1, 2, 3, 4]));
      expect([...(await readFileUpTo(small, 4, tooLarge))]).toEqual([1, 2, 3, 4]);
      await expect(readFileUpTo(small, 3, tooLarge)).rejects.toThrow('too large: 4');
      // Sparse, so nothing is on disk: refused by its size, at once.
      const huge = path.join(dir, 'huge.bin');
      await writeFile(huge, '');
      const handle = await open(huge, 'r+');
      await handle.truncate(3 * 2 ** 30);
      await handle.close();
      await expect(readFileUpTo(huge, 1000, tooLarge)).rejects.toThrow(`too large: ${3 * 2 ** 30}`);
      if (existsSync('/dev/zero')) {
        await expect(readFileUpTo('/dev/zero', 3 * 2 ** 20, tooLarge)).rejects.toThrow(
          'too large: undefined',
        );
      }
      // A stream (standard input): up to the limit, and no further.
      const stream = () => Readable.from([Buffer.from([1, 2]), Buffer.from([3, 4])]);
      expect([...(await readFileUpTo(stream(), 4, tooLarge))]).toEqual([1, 2, 3, 4]);
      await expect(readFileUpTo(stream(), 3, tooLarge)).rejects.toThrow('too large: undefined');
      await expect(readFileUpTo(path.join(dir, 'missing'), 10, tooLarge)).rejects.toMatchObject({
        code: 'ENOENT',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
