import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CACHE_DIR_ENV, MAX_DECODE_LIMITS, MODELS_MIRROR_ENV } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { expandImageArguments, tooLargeHint } from '../src/images.js';
import { serveLocally } from '../src/index.js';
import { addBbtPeople, cli } from './helpers.js';

interface DetectJson {
  image: string;
  width?: number;
  height?: number;
  faces?: unknown[];
  error?: string;
}

describe('a folder of 200,000 images (CelebA holds 202,599 in one)', () => {
  it('lists them all, sorted (joined with push(...spread), they overflowed the call stack)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'facerec-many-'));
    try {
      const count = 200_000;
      const names = Array.from({ length: count }, (_, i) => `${String(i).padStart(6, '0')}.jpg`);
      for (let i = 0; i < count; i += 1000) {
        await Promise.all(names.slice(i, i + 1000).map((name) => writeFile(path.join(dir, name), '')));
      }
      const files = await expandImageArguments('detect', [dir]);
      expect(files.length).toBe(count);
      expect(files[0]).toBe(path.join(dir, '000000.jpg'));
      expect(files.at(-1)).toBe(path.join(dir, '199999.jpg'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('--max-image-bytes and --max-image-pixels', () => {
  it('refuses a value out of range before reading any image or loading a model (exit 2)', async () => {
    for (const [flag, value, accepted] of [
      ['--max-image-pixels', '100000001', 'an integer from 1024 to 100000000'],
      ['--max-image-pixels', '0', 'an integer from 1024 to 100000000'],
      ['--max-image-bytes', '67108865', 'an integer from 1024 to 67108864'],
      ['--max-image-bytes', '10MB', 'an integer from 1024 to 67108864'],
    ] as const) {
      for (const command of [
        ['detect'],
        ['recognize', '--gallery', 'missing.json'],
        ['embed'],
      ] as string[][]) {
        const run = await cli(...command, 'no-such-photo.jpg', flag, value);
        expect(run.exitCode ?? run.code, `${command[0]} ${flag} ${value}`).toBe(2);
        expect(run.stderr).toContain(`${command[0]}: ${flag} must be ${accepted}, got "${value}"`);
      }
    }
  });
});

it('the hint for photos skipped as too large names the largest value each flag needs, and those to resize', () => {
  expect(
    tooLargeHint([
      { limit: 'bytes', actual: 20_000_000 },
      { limit: 'pixels', actual: 48_000_000 },
      { limit: 'pixels', actual: 30_000_000 },
    ]),
  ).toBe('--max-image-bytes 20000000 and --max-image-pixels 48000000 take them');
  expect(tooLargeHint([{ limit: 'pixels', actual: 200_000_000 }])).toBe(
    '1 beyond 67108864 bytes or 100000000 pixels: resize it',
  );
  expect(
    tooLargeHint([
      { limit: 'pixels', actual: 30_000_000 },
      { limit: 'pixels', actual: 200_000_000 },
    ]),
  ).toBe(
    '--max-image-pixels 30000000 takes 1 of them; 1 beyond 67108864 bytes or 100000000 pixels: resize it',
  );
});

it('serve takes images of at most 50282496 bytes: their base64 fills a 64 MiB request', async () => {
  const run = await cli('serve', '--gallery', 'missing.json', '--max-image-bytes', '50282497');
  expect(run.exitCode ?? run.code).toBe(2);
  expect(run.stderr).toContain(
    'serve: --max-image-bytes must be an integer from 1024 to 50282496, got "50282497"',
  );
});

describeWithSharedData(
  'image limits on the command line',
  ['faces/face-api.js/bbt3.jpg', 'models/upstream/pnet.pt'],
  () => {
    let work: string;
    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-limits-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
    });
    afterAll(async () => {
      vi.unstubAllEnvs();
      await rm(work, { recursive: true, force: true });
    });

    const group = () => sharedPath('faces', 'face-api.js', 'bbt3.jpg'); // 594×383: 227,502 pixels

    it('an image over a limit is refused with the flag and value that take it, which do', async () => {
      const refused = await cli('detect', group(), '--json', '--max-image-pixels', '200000');
      expect([refused.code, refused.exitCode]).toEqual([0, 2]);
      expect((JSON.parse(refused.stdout) as DetectJson[])[0]!.error).toBe(
        'Image too large: 227502 pixels exceeds the limit of 200000 pixels (594×383); --max-image-pixels 227502 takes it',
      );
      const taken = await cli('detect', group(), '--json', '--max-image-pixels', '227502');
      expect([taken.code, taken.exitCode]).toEqual([0, undefined]);
      expect((JSON.parse(taken.stdout) as DetectJson[])[0]!.faces).toHaveLength(5);

      const bytes = (await stat(group())).size;
      const tooMany = await cli('detect', group(), '--json', '--max-image-bytes', '1024');
      expect((JSON.parse(tooMany.stdout) as DetectJson[])[0]!.error).toBe(
        `cannot read ${group()}: Image too large: ${bytes} bytes exceeds the limit of 1024 bytes; --max-image-bytes ${bytes} takes it`,
      );
      // One byte over: still a file of known size (a stream over the limit has none, and gets no value).
      const justOver = await cli('detect', group(), '--json', '--max-image-bytes', String(bytes - 1));
      expect((JSON.parse(justOver.stdout) as DetectJson[])[0]!.error).toMatch(
        new RegExp(`; --max-image-bytes ${bytes} takes it$`),
      );
    });

    it('beyond the ceiling (100 megapixels), it says to resize; up to it, the flag takes a phone photo', async () => {
      // Flat JPEGs: a few hundred KB for 100 megapixels; the decoder refuses from the header.
      const flat = (width: number, height: number, file: string) =>
        sharp({ create: { width, height, channels: 3, background: { r: 90, g: 120, b: 150 } } })
          .jpeg({ quality: 50 })
          .toFile(path.join(work, file));
      await flat(10_001, 10_000, 'over.jpg');
      const over = await cli(
        'detect',
        path.join(work, 'over.jpg'),
        '--json',
        '--max-image-pixels',
        '100000000',
      );
      expect((JSON.parse(over.stdout) as DetectJson[])[0]!.error).toBe(
        'Image too large: 100010000 pixels exceeds the limit of 100000000 pixels (10001×10000); resize it (--max-image-pixels goes up to 100000000)',
      );
      // A 48-megapixel photo (8000×6000): refused by default (25 MP), read with the flag the message names.
      const photo = path.join(work, 'photo48.jpg');
      await sharp(group()).resize({ width: 8000, height: 6000, fit: 'fill' }).jpeg().toFile(photo);
      const refused = await cli('detect', photo, '--json');
      expect((JSON.parse(refused.stdout) as DetectJson[])[0]!.error).toBe(
        'Image too large: 48000000 pixels exceeds the limit of 25000000 pixels (8000×6000); --max-image-pixels 48000000 takes it',
      );
      const taken = await cli('detect', photo, '--json', '--max-image-pixels', '48000000');
      expect(taken.exitCode).toBeUndefined();
      const [result] = JSON.parse(taken.stdout) as DetectJson[];
      expect([result!.width, result!.height]).toEqual([8000, 6000]);
      expect(result!.faces!.length).toBeGreaterThan(0);
    });

    it('enroll lists photos over the limit as skipped, with the value that takes them all', async () => {
      const dir = path.join(work, 'people');
      await mkdir(path.join(dir, 'group'), { recursive: true });
      await sharp(group()).toFile(path.join(dir, 'group', 'bbt3.png'));
      await sharp(group())
        .resize(500, 300)
        .toFile(path.join(dir, 'group', 'small.png'));
      const enroll = (...more: string[]) =>
        cli('enroll', dir, '--out', path.join(work, 'g.json'), '--embedder', 'faceapi-resnet', ...more);
      const run = await enroll('--max-image-pixels', '100000');
      expect(run.exitCode ?? run.code).toBe(2); // nothing enrolled
      expect(run.stderr).toContain(
        'group/bbt3.png: too large (Image too large: 227502 pixels exceeds the limit of 100000 pixels (594×383))',
      );
      // The value that takes every one of them: the largest needed.
      expect(run.stderr).toContain('(2 photos too large: --max-image-pixels 227502 takes them)');
      const json = await enroll('--max-image-pixels', '100000', '--json');
      const skipped = (JSON.parse(json.stdout) as { skipped: { file: string; tooLarge?: unknown }[] })
        .skipped;
      expect(skipped.map((s) => [s.file, s.tooLarge])).toEqual([
        ['group/bbt3.png', { limit: 'pixels', actual: 227502 }],
        ['group/small.png', { limit: 'pixels', actual: 150000 }],
      ]);
    });
  },
);

describeWithSharedData(
  'facerec serve: --max-image-bytes raises the request body limit with it',
  ['faces/face-api.js/bbt', 'models/upstream/pnet.pt'],
  () => {
    let work: string;
    let body: string;
    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-serve-limits-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
      await addBbtPeople(path.join(work, 'g.json'), ['amy']);
      // Noise does not compress: a 1500×1500 PNG of it is ≈ 6.8 MB, a frame of ≈ 9 MB, over Lambda's 6 MiB.
      const noise = Buffer.alloc(1500 * 1500 * 3);
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
      const png = await sharp(noise, { raw: { width: 1500, height: 1500, channels: 3 } })
        .png({ compressionLevel: 0 })
        .toBuffer();
      expect(png.length).toBeGreaterThan(6 * 1024 * 1024);
      body = JSON.stringify({
        content: png.toString('base64'),
        request_id: 'large-1',
        filename: 'noise.png',
      });
      await writeFile(path.join(work, 'frame.json'), body);
    });
    afterAll(async () => {
      vi.unstubAllEnvs();
      await rm(work, { recursive: true, force: true });
    });

    const post = async (url: string) => {
      const response = await fetch(`${url}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: await readFile(path.join(work, 'frame.json'), 'utf8'),
      });
      return { status: response.status, body: (await response.json()) as { error?: string; limit?: string } };
    };

    it('by default a frame over 6 MiB is refused by its size; with --max-image-bytes it reaches the decoder', async () => {
      const gallery = path.join(work, 'g.json');
      const plain = await serveLocally({ gallery, port: 0, quiet: true, workers: 0 });
      try {
        const { status, body: answer } = await post(plain.runtime.url);
        expect(status).toBe(413);
        expect(answer.error).toBe(
          "body exceeds the server's limit of 6291456 bytes: send a smaller image (or raise the limit: facerec serve --max-image-bytes)",
        );
      } finally {
        await plain.close();
      }
      const raised = await serveLocally({
        gallery,
        port: 0,
        quiet: true,
        workers: 0,
        // Fewer pixels than the 1280×720 warm-up frame: the detector warms up on a smaller one.
        imageLimits: { maxBytes: 8 * 1024 * 1024, maxPixels: 500_000 },
      });
      try {
        // Past the body limit and the byte limit, the frame meets the pixel limit set with them.
        const { status, body: answer } = await post(raised.runtime.url);
        expect(status).toBe(413);
        expect(answer.error).toMatch(
          /^Image too large: 2250000 pixels exceeds the limit of 500000 pixels \(1500×1500\) \(or raise the limit: facerec serve --max-image-pixels\)$/,
        );
        expect(answer.limit).toBe('pixels');
      } finally {
        await raised.close();
      }
    });

    it('says a limit at the most serve takes as such, not "raise the limit"', async () => {
      const most = await serveLocally({
        gallery: path.join(work, 'g.json'),
        port: 0,
        quiet: true,
        workers: 0,
        imageLimits: { maxPixels: MAX_DECODE_LIMITS.maxPixels },
      });
      try {
        // 10001×10000: one row over 100 megapixels, refused from its header (a small PNG of one colour).
        const png = await sharp({
          create: { width: 10_001, height: 10_000, channels: 3, background: '#808080' },
        })
          .png({ compressionLevel: 9 })
          .toBuffer();
        const response = await fetch(`${most.runtime.url}/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            content: png.toString('base64'),
            request_id: 'most-1',
            filename: 'big.png',
          }),
        });
        const answer = (await response.json()) as { error: string; limit: string; maximum: number };
        expect(response.status).toBe(413);
        expect(answer).toMatchObject({ limit: 'pixels', maximum: MAX_DECODE_LIMITS.maxPixels });
        expect(answer.error).toMatch(
          /exceeds the limit of 100000000 pixels .*\(the most facerec serve takes\)$/,
        );
      } finally {
        await most.close();
      }
    });
  },
);
