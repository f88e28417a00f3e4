import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CACHE_DIR_ENV,
  calibrateThresholdLeaveOneOut,
  FileGallery,
  MODELS,
  MODELS_MIRROR_ENV,
} from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cli } from './helpers.js';

/** What `gallery calibrate --json` prints, as far as these tests read it. */
interface CalibrationSummary {
  threshold: number;
  genuinePairs: number;
  impostorPairs: number;
}

const BBT = ['faces', 'face-api.js', 'bbt'] as const;
const SHIPPED = MODELS.embedder('faceapi-resnet').thresholds.euclidean!.value;

interface Row {
  image: string;
  identity: string;
  distance: number;
  threshold: number;
  thresholdSource: string;
}

// The acceptance: enroll bbt images 1–2, recognize the held-back 3–4 with no calibration step (the
// shipped threshold), and `unknown` for an identity that is not in the gallery.
describeWithSharedData('facerec recognize with a gallery never calibrated', [BBT.join('/')], () => {
  let work: string;
  let people: string[];
  const probes = (names: readonly string[]) =>
    names.flatMap((n) => [3, 4].map((i) => sharedPath(...BBT, n, `${n}${i}.png`)));

  async function enroll(names: readonly string[], out: string) {
    const root = path.join(work, path.basename(out, '.json'));
    for (const name of names) {
      await mkdir(path.join(root, name), { recursive: true });
      for (const i of [1, 2])
        await symlink(sharedPath(...BBT, name, `${name}${i}.png`), path.join(root, name, `${name}${i}.png`));
    }
    const run = await cli('enroll', root, '--out', out, '--embedder', 'faceapi-resnet');
    expect(run.code, run.stderr).toBe(0);
    return run;
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'facerec-cli-shipped-'));
    vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
    vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
    people = (await readdir(sharedPath(...BBT))).sort();
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('enroll refuses a missing folder before it loads any model (exit 2, not a download failure)', async () => {
    // No mirror and an empty cache: loading the default embedder first would fail to download it (exit 1).
    vi.stubEnv(MODELS_MIRROR_ENV, path.join(work, 'no-mirror'));
    vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'empty-cache'));
    try {
      const run = await cli('enroll', path.join(work, 'nope'), '--out', path.join(work, 'nope.json'));
      expect([run.code, run.stderr]).toEqual([
        2,
        `facerec: enroll: cannot read the folder of labelled images ${path.join(work, 'nope')}: no such folder\n`,
      ]);
    } finally {
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
    }
  });

  it('enroll refuses a folder without identity folders, writing nothing', async () => {
    const flat = path.join(work, 'flat');
    await mkdir(flat, { recursive: true });
    await symlink(sharedPath(...BBT, 'amy', 'amy1.png'), path.join(flat, 'amy1.png'));
    const out = path.join(work, 'flat.json');
    const run = await cli('enroll', flat, '--out', out, '--embedder', 'faceapi-resnet');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`nothing enrolled from ${flat}, so no gallery was written`);
    expect(run.stderr).toContain('skipped amy1.png');
    await expect(readdir(work)).resolves.not.toContain('flat.json');
  });

  it('enroll warns of photos another person of the gallery is recognised in (one person under two names)', async () => {
    const twice = path.join(work, 'two-names');
    for (const [folder, photos] of [
      ['amy', ['amy1', 'amy2']],
      ['amy_alias', ['amy3', 'amy4']],
      ['raj', ['raj1', 'raj2']],
    ] as const) {
      await mkdir(path.join(twice, folder), { recursive: true });
      for (const photo of photos) {
        const person = photo.replace(/\d$/, '');
        await symlink(sharedPath(...BBT, person, `${photo}.png`), path.join(twice, folder, `${photo}.png`));
      }
    }
    const out = path.join(work, 'two-names.json');
    const run = await cli('enroll', twice, '--out', out, '--embedder', 'faceapi-resnet', '--json');
    expect(run.code, run.stderr).toBe(0);
    const { lookAlikes } = JSON.parse(run.stdout) as {
      lookAlikes: { source: string; enrolledAs: string; identity: string }[];
    };
    // Amy's photos, each within the threshold of her other name; raj is nobody's look-alike.
    expect(lookAlikes.length).toBeGreaterThanOrEqual(2);
    for (const l of lookAlikes) expect([l.enrolledAs, l.identity].sort()).toEqual(['amy', 'amy_alias']);
    expect(run.stderr).toMatch(
      /warning: amy(_alias)?\/amy\d\.png, enrolled as amy(_alias)?, is within the threshold of amy(_alias)? too \(distance [\d.]+ ≤ threshold 0\.448\): a mislabelled photo/,
    );
  });

  it('enroll lists 20 skipped images on stderr, then a count per reason; --json lists every one', async () => {
    const many = path.join(work, 'many-skipped');
    await mkdir(path.join(many, 'amy'), { recursive: true });
    await mkdir(path.join(many, 'junk'));
    await symlink(sharedPath(...BBT, 'amy', 'amy1.png'), path.join(many, 'amy', 'amy1.png'));
    for (let i = 10; i < 35; i++) await writeFile(path.join(many, 'junk', `j${i}.png`), '');
    const run = await cli(
      'enroll',
      many,
      '--out',
      path.join(work, 'many.json'),
      '--embedder',
      'faceapi-resnet',
      '--json',
    );
    expect(run.code, run.stderr).toBe(0);
    const skippedLines = run.stderr.split('\n').filter((l) => l.startsWith('  junk/'));
    expect(skippedLines).toHaveLength(20);
    expect(run.stderr).toContain('  … and 5 more: 5 undecodable (--json lists every one)');
    expect(JSON.parse(run.stdout).skipped).toHaveLength(25);
    // Every photo of junk was skipped: the person is missing from the gallery, said in one line.
    expect(run.stderr).toContain('not in the gallery, no photo enrolled: 1 identity ("junk")');
    expect(JSON.parse(run.stdout).unenrolled).toEqual(['junk']);
    // Never calibrated: the threshold matching applies, said as gallery list --json says it.
    expect(JSON.parse(run.stdout)).toMatchObject({ threshold: 0.448, thresholdSource: 'registry' });
  });

  it('enroll --strict writes no gallery when a photo is skipped; hidden entries do not count', async () => {
    const strict = path.join(work, 'strict');
    await mkdir(path.join(strict, 'amy'), { recursive: true });
    await mkdir(path.join(strict, 'penny'));
    await symlink(sharedPath(...BBT, 'amy', 'amy1.png'), path.join(strict, 'amy', 'amy1.png'));
    await writeFile(path.join(strict, 'amy', '.DS_Store'), '');
    const out = path.join(work, 'strict.json');
    const args = ['enroll', strict, '--out', out, '--embedder', 'faceapi-resnet', '--strict'] as const;
    // Only a hidden entry besides the photo: written.
    await rm(path.join(strict, 'penny'), { recursive: true });
    const clean = await cli(...args);
    expect(clean.code, clean.stderr).toBe(0);
    await rm(out);
    // A person whose one photo shows no face: refused, nothing written, the photo and the person named.
    await mkdir(path.join(strict, 'penny'));
    await symlink(
      sharedPath('faces', 'face-api.js', 'test', 'white.png'),
      path.join(strict, 'penny', 'white.png'),
    );
    const run = await cli(...args, '--json');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('skipped penny/white.png: no face');
    expect(run.stderr).toContain('not in the gallery, no photo enrolled: 1 identity ("penny")');
    expect(run.stderr).toContain(
      `--strict: 1 photo or folder skipped (reasons above), so no gallery was written to ${out}`,
    );
    expect(JSON.parse(run.stdout)).toMatchObject({ out: null, enrolled: [], unenrolled: ['penny'] });
    await expect(readdir(work)).resolves.not.toContain('strict.json');
    // Without --strict the same folder is enrolled, penny named as missing.
    const lenient = await cli(...args.filter((a) => a !== '--strict'));
    expect(lenient.code, lenient.stderr).toBe(0);
    expect(lenient.stderr).toContain('not in the gallery, no photo enrolled: 1 identity ("penny")');
    // An --out through a file is (the gallery just written) refused before any work, as bad input.
    const through = await cli(
      'enroll',
      strict,
      '--out',
      path.join(out, 'g.json'),
      '--embedder',
      'faceapi-resnet',
    );
    expect([through.code, through.stderr]).toEqual([
      2,
      `facerec: enroll: --out ${path.join(out, 'g.json')}: a part of ${out} is a file, not a folder\n`,
    ]);
  });

  it('enroll with every image refused says so, with each reason, and --json still prints why', async () => {
    const refused = path.join(work, 'refused');
    await mkdir(path.join(refused, 'nobody'), { recursive: true });
    await symlink(
      sharedPath('faces', 'face-api.js', 'test', 'white.png'),
      path.join(refused, 'nobody', 'white.png'),
    );
    const out = path.join(work, 'refused.json');
    const run = await cli('enroll', refused, '--out', out, '--embedder', 'faceapi-resnet', '--json');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('skipped nobody/white.png: no face');
    expect(run.stderr).toContain(
      `nothing enrolled from ${refused}, so no gallery was written: every image was skipped`,
    );
    expect(JSON.parse(run.stdout)).toMatchObject({
      out: null,
      enrolled: [],
      skipped: [{ file: 'nobody/white.png', reason: 'no face' }],
    });
    await expect(readdir(work)).resolves.not.toContain('refused.json');
  });

  it('names the held-back photos at the shipped threshold, and says so once', async () => {
    const gallery = path.join(work, 'all.json');
    const enrolled = await enroll(people, gallery);
    expect(enrolled.stderr).toContain(
      `recognition uses faceapi-resnet's recommended euclidean threshold ${SHIPPED}`,
    );
    const run = await cli('recognize', ...probes(people), '--gallery', gallery, '--json', '--workers', '2');
    expect(run.code, run.stderr).toBe(0);
    const notes = run.stderr.split('\n').filter((l) => l.includes('never calibrated'));
    expect(notes).toEqual([
      `${gallery} was never calibrated: matching at faceapi-resnet's recommended euclidean threshold ${SHIPPED} ` +
        '(`facerec gallery calibrate` sets one from your own photos, best with strangers among the probes)',
    ]);
    const rows = JSON.parse(run.stdout) as Row[];
    expect(rows).toHaveLength(16);
    for (const row of rows) expect(row).toMatchObject({ threshold: SHIPPED, thresholdSource: 'registry' });
    const correct = rows.filter((r) => path.basename(r.image).startsWith(r.identity)).length;
    console.log(`bbt 3–4 against 1–2 at the shipped threshold ${SHIPPED}: ${correct}/16 named correctly`);
    expect(correct).toBeGreaterThanOrEqual(15);
    // The rows above came from two worker threads, several images at once; on the main thread, one at a time,
    // they are the same, in the same order.
    const one = await cli('recognize', ...probes(people), '--gallery', gallery, '--json', '--workers', '0');
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual(rows);
    expect(rows.map((r) => r.image)).toEqual(probes(people));
    // gallery search matches the same way, and says so in the same line.
    const search = await cli('gallery', 'search', gallery, ...probes(['amy']), '--json');
    expect(search.code, search.stderr).toBe(0);
    expect(search.stderr).toContain(
      `${gallery} was never calibrated: matching at faceapi-resnet's recommended`,
    );
    const found = JSON.parse(search.stdout) as { identity: string }[];
    expect(found.map((f) => f.identity)).toEqual(['amy', 'amy']);
  });

  it('gallery calibrate refuses the enrolled photos as probes, naming them, unless --allow-overlap', async () => {
    const gallery = path.join(work, 'all.json');
    const enrolledRoot = path.join(work, 'all');
    const refused = await cli('gallery', 'calibrate', enrolledRoot, '--gallery', gallery, '--json');
    expect(refused.code).toBe(2);
    // Said as the command's refusal, not the library function's (calibrateThreshold: …).
    expect(refused.stderr).toMatch(
      /\nfacerec: gallery calibrate: 16 of 16 probes are enrolled examples: amy\/amy1\.png \(same file as enrolled amy\/amy1\.png\), .*, and 11 more\./,
    );
    const missing = await cli('gallery', 'calibrate', path.join(work, 'nope'), '--gallery', gallery);
    expect([missing.code, missing.stderr]).toEqual([
      2,
      `facerec: gallery calibrate: cannot read the folder of labelled images ${path.join(work, 'nope')}: no such folder\n`,
    ]);
    // A copy of the same photos under other names is the same pixels.
    const copies = path.join(work, 'copies');
    await mkdir(path.join(copies, 'amy'), { recursive: true });
    await symlink(sharedPath(...BBT, 'amy', 'amy1.png'), path.join(copies, 'amy', 'portrait.png'));
    await symlink(sharedPath(...BBT, 'amy', 'amy3.png'), path.join(copies, 'amy', 'new.png'));
    const copied = await cli('gallery', 'calibrate', copies, '--gallery', gallery);
    expect(copied.stderr).toMatch(
      /1 of 2 probes are enrolled examples: amy\/portrait\.png \(same pixels as enrolled amy\/amy1\.png\)/,
    );

    const out = path.join(work, 'overlap.json');
    const allowed = await cli(
      'gallery',
      'calibrate',
      copies,
      '--gallery',
      gallery,
      '--out',
      out,
      '--allow-overlap',
      '--json',
    );
    expect(allowed.code, allowed.stderr).toBe(0);
    const summary = JSON.parse(allowed.stdout) as {
      genuinePairs: number;
      impostorPairs: number;
      warnings: string[];
      overlaps: unknown[];
    };
    // 2 probes of amy: 2 genuine pairs, 2 × 7 impostor pairs.
    expect([summary.genuinePairs, summary.impostorPairs]).toEqual([2, 14]);
    expect(summary.overlaps).toEqual([
      { probe: 'amy/portrait.png', kind: 'same pixels', enrolled: 'amy/amy1.png' },
    ]);
    expect(summary.warnings).toEqual(
      expect.arrayContaining([
        '1 of 2 probes are enrolled examples (allowed): their pairs make the threshold look better than it is',
        expect.stringMatching(/^only 2 genuine pairs back the threshold \(fewer than 20\)/),
      ]),
    );
  });

  it('gallery calibrate leaves out one face under two names and names a probe labelled with the wrong name', async () => {
    const gallery = path.join(work, 'all.json');
    const probes = path.join(work, 'mislabelled');
    for (const name of ['amy', 'penny']) await mkdir(path.join(probes, name), { recursive: true });
    const link = (from: [string, string], to: string) =>
      symlink(sharedPath(...BBT, ...from), path.join(probes, to));
    await link(['amy', 'amy3.png'], 'amy/amy3.png');
    await link(['amy', 'amy4.png'], 'amy/amy4.png');
    // penny3 under both names; penny4 under amy's only.
    await link(['penny', 'penny3.png'], 'amy/a-copy.png');
    await link(['penny', 'penny3.png'], 'penny/penny3.png');
    await link(['penny', 'penny4.png'], 'amy/x.png');
    const out = path.join(work, 'mislabelled.json');
    const run = await cli(
      'gallery',
      'calibrate',
      probes,
      '--gallery',
      gallery,
      '--out',
      out,
      '--target-far',
      '0.05',
      '--json',
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      '  left out penny/penny3.png and amy/a-copy.png: the same face under two names (penny and amy); keep it under its own name only',
    );
    const summary = JSON.parse(run.stdout) as CalibrationSummary & {
      warnings: string[];
      rejected: {
        identity: string;
        source: string;
        nearest: { identity: string };
        likelyMislabelled: boolean;
      }[];
    };
    // amy3, amy4 and x.png (a photo of penny labelled amy): 3 genuine pairs, 3 × 7 impostor pairs. FAR 5 %
    // accepts one impostor: x.png as penny.
    expect([summary.genuinePairs, summary.impostorPairs]).toEqual([3, 21]);
    expect(summary.rejected).toEqual([
      expect.objectContaining({
        identity: 'amy',
        source: 'amy/x.png',
        nearest: expect.objectContaining({ identity: 'penny' }),
        likelyMislabelled: true,
      }),
    ]);
    expect(summary.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^1 probe is farther from its own identity than the threshold \(false rejects\): amy\/x\.png \([\d.]+ from amy; nearer to penny, [\d.]+: labelled with the wrong name\?\)/,
        ),
      ]),
    );
  });

  it('gallery calibrate --leave-one-out shows its progress on a large gallery (its work grows with the square)', async () => {
    const { embedder } = await FileGallery.load(path.join(work, 'all.json'));
    // 715 people × 7 examples, at random directions (deterministic: a fixed linear congruential sequence): the
    // count moves 7 at a time, past the tenths (501, 1002, …) that off a terminal get a line.
    let seed = 1;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return (seed / 2147483647) * 2 - 1;
    };
    const vector = () => Float32Array.from({ length: embedder.dimension }, random);
    const large = path.join(work, 'large.json');
    await FileGallery.create({
      embedder,
      metric: 'cosine',
      identities: Array.from({ length: 715 }, (_, i) => ({
        name: `p${i}`,
        examples: Array.from({ length: 7 }, () => ({ source: '', embedding: vector() })),
      })),
    }).save(large);
    const run = await cli(
      'gallery',
      'calibrate',
      '--leave-one-out',
      '--gallery',
      large,
      '--out',
      `${large}.out`,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('  calibrating: 501/5005\n  calibrating: 1002/5005\n');
    expect(run.stderr).toContain('  calibrating: 5005/5005\n');
  });

  it('gallery calibrate --leave-one-out: each enrolled example against the rest, no probes', async () => {
    const gallery = path.join(work, 'all.json');
    const out = path.join(work, 'leave-one-out.json');
    const run = await cli(
      'gallery',
      'calibrate',
      '--leave-one-out',
      '--gallery',
      gallery,
      '--out',
      out,
      '--json',
    );
    expect(run.code, run.stderr).toBe(0);
    // A gallery this small is done in an instant: no progress shown.
    expect(run.stderr).not.toContain('calibrating');
    const summary = JSON.parse(run.stdout) as CalibrationSummary;
    // 8 people × 2 photos: each person's two photos, one pair (held out either way, one comparison), and each
    // photo against the 7 other people.
    expect([summary.genuinePairs, summary.impostorPairs]).toEqual([8, 112]);
    const expected = calibrateThresholdLeaveOneOut(await FileGallery.load(gallery));
    expect(summary.threshold).toBe(expected.point.threshold);
    const saved = await FileGallery.load(out);
    expect([saved.threshold, saved.calibration?.genuinePairs]).toEqual([expected.point.threshold, 8]);
    // A probe folder and --leave-one-out, or neither: refused before anything loads.
    const both = await cli('gallery', 'calibrate', work, '--leave-one-out', '--gallery', gallery);
    expect([both.code, both.stderr]).toEqual([
      2,
      'facerec: gallery calibrate: --leave-one-out calibrates on the enrolled examples: give no probe folder with it\n',
    ]);
    const neither = await cli('gallery', 'calibrate', '--gallery', gallery);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('give a folder of labelled probes');
    const overlap = await cli(
      'gallery',
      'calibrate',
      '--leave-one-out',
      '--allow-overlap',
      '--gallery',
      gallery,
    );
    expect([overlap.code, overlap.stderr]).toEqual([
      2,
      'facerec: gallery calibrate: --allow-overlap is for probes that are enrolled examples; --leave-one-out has no probes\n',
    ]);
    // One example per person: no genuine pair, said as the command's refusal.
    const single = path.join(work, 'single-examples.json');
    const loaded = await FileGallery.load(gallery);
    await FileGallery.create({
      embedder: loaded.embedder,
      identities: loaded.names.map((name) => ({ name, examples: loaded.examples(name).slice(0, 1) })),
    }).save(single);
    const lone = await cli('gallery', 'calibrate', '--leave-one-out', '--gallery', single);
    expect(lone.code).toBe(2);
    expect(lone.stderr).toMatch(/^facerec: gallery calibrate --leave-one-out: need at least one genuine/);
  });

  it('calibrate on one probe: threshold midway to the nearest impostor, report on stdout, warnings on stderr', async () => {
    const gallery = path.join(work, 'all.json');
    const one = path.join(work, 'one-probe');
    await mkdir(path.join(one, 'amy'), { recursive: true });
    await symlink(sharedPath(...BBT, 'amy', 'amy3.png'), path.join(one, 'amy', 'amy3.png'));
    const out = path.join(work, 'one-probe.json');
    const json = await cli('gallery', 'calibrate', one, '--gallery', gallery, '--out', out, '--json');
    expect(json.code, json.stderr).toBe(0);
    const summary = JSON.parse(json.stdout) as CalibrationSummary;
    expect([summary.genuinePairs, summary.impostorPairs]).toEqual([1, 7]);
    // amy3 against amy and against the seven others, embedded by `recognize`: the threshold is midway between
    // its distance to amy and its distance to the nearest other identity.
    const search = await cli(
      'gallery',
      'search',
      gallery,
      path.join(one, 'amy', 'amy3.png'),
      '--top-k',
      '8',
      '--json',
    );
    expect(search.code, search.stderr).toBe(0);
    const [row] = JSON.parse(search.stdout) as { candidates: { identity: string; distance: number }[] }[];
    const amy = row!.candidates.find((c) => c.identity === 'amy')!.distance;
    const nearestOther = Math.min(
      ...row!.candidates.filter((c) => c.identity !== 'amy').map((c) => c.distance),
    );
    expect(summary.threshold).toBeCloseTo((amy + nearestOther) / 2, 3);
    const text = await cli('gallery', 'calibrate', one, '--gallery', gallery, '--out', out);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toContain('warning');
    expect(text.stderr).toMatch(/^warning: only 1 genuine pair backs the threshold/m);
    expect(text.stderr).toContain(`replacing the gallery at ${out} (8 identities, 16 examples, calibrated)`);
  });

  it('recognize takes a file:// URL (a row for an image without a face too), refuses another store URL without repeating it, and enroll will not overwrite what is no gallery', async () => {
    const gallery = path.join(work, 'all.json');
    const white = sharedPath('faces', 'face-api.js', 'test', 'white.png');
    const missing = path.join(work, 'missing.png');
    const byUrl = await cli(
      'recognize',
      ...probes(['amy']),
      white,
      missing,
      '--gallery',
      `file://${gallery}`,
      '--json',
    );
    expect([byUrl.code, byUrl.exitCode], byUrl.stderr).toEqual([0, 2]);
    const rows = JSON.parse(byUrl.stdout) as Row[];
    expect(rows.map((r) => r.identity)).toEqual(['amy', 'amy', 'no face', undefined]);
    expect(rows[2]).toMatchObject({ image: white, box: null, distance: null, thresholdSource: 'registry' });
    // An image that cannot be read has its row, as in detect --json and embed --json.
    expect(rows[3]).toEqual({ image: missing, error: `cannot read ${missing}: no such file` });
    const store = await cli('recognize', ...probes(['amy']), '--gallery', 'postgres://u:secret@127.0.0.1/db');
    expect(store.code).toBe(2);
    expect(store.stderr).toContain(
      '--gallery takes a gallery file (a path or a file:// URL); postgres:// is not one',
    );
    expect(store.stderr).not.toContain('secret');
    const notes = path.join(work, 'notes.txt');
    await writeFile(notes, 'important\n');
    const refused = await cli(
      'enroll',
      path.join(work, 'all'),
      '--out',
      notes,
      '--embedder',
      'faceapi-resnet',
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`--out ${notes} exists and is not a gallery file; not overwriting it`);
    expect(await readFile(notes, 'utf8')).toBe('important\n');
    const folder = await cli('enroll', path.join(work, 'all'), '--out', work, '--embedder', 'faceapi-resnet');
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain(`--out ${work} is a folder`);
    // A folder as the gallery to read, and an --out given as a file:// URL (a path, not a folder named "file:").
    const asGallery = await cli('recognize', ...probes(['amy']), '--gallery', work);
    expect(asGallery.code).toBe(2);
    expect(asGallery.stderr).toContain(`${work} is a folder, not a gallery file`);
    const byUrlOut = path.join(work, 'by-url.json');
    const enrolledByUrl = await cli(
      'enroll',
      path.join(work, 'all'),
      '--out',
      `file://${byUrlOut}`,
      '--embedder',
      'faceapi-resnet',
    );
    expect(enrolledByUrl.code, enrolledByUrl.stderr).toBe(0);
    await expect(readFile(byUrlOut, 'utf8')).resolves.toContain('faceapi-resnet');
  });

  it('recognizes, searches and adds a face crop that `detect --crops-dir` wrote, as enroll and verify take it', async () => {
    // bernadette3's crop (eyes-mouth, 150 px): MTCNN alone finds no face in it, the pre-cropped fallback does.
    const crops = path.join(work, 'crops');
    const cut = await cli(
      'detect',
      sharedPath(...BBT, 'bernadette', 'bernadette3.png'),
      '--crops-dir',
      crops,
      '--embedder',
      'faceapi-resnet',
    );
    expect(cut.code, cut.stderr).toBe(0);
    const crop = path.join(crops, 'bernadette3_0.png');
    const gallery = path.join(work, 'all.json');
    const named = await cli('recognize', crop, '--gallery', gallery, '--json');
    expect(named.code, named.stderr).toBe(0);
    expect((JSON.parse(named.stdout) as Row[]).map((r) => r.identity)).toEqual(['bernadette']);
    const searched = await cli('gallery', 'search', gallery, crop, '--json');
    expect(searched.code, searched.stderr).toBe(0);
    expect(searched.stdout).toContain('"identity": "bernadette"');
    const copy = path.join(work, 'crop-add.json');
    await writeFile(copy, await readFile(gallery));
    const added = await cli('gallery', 'add', copy, 'bernadette', crop);
    expect(added.code, added.stderr).toBe(0);
  });

  it('answers unknown for an identity removed from the gallery', async () => {
    const gallery = path.join(work, 'without-stuart.json');
    await enroll(
      people.filter((p) => p !== 'stuart'),
      gallery,
    );
    const run = await cli('recognize', ...probes(['stuart']), '--gallery', gallery, '--json');
    expect(run.code, run.stderr).toBe(0);
    const rows = JSON.parse(run.stdout) as Row[];
    expect(rows.map((r) => r.identity)).toEqual(['unknown', 'unknown']);
    for (const row of rows) expect(row.distance).toBeGreaterThan(SHIPPED);
  });

  it('--min-face-size: recognize and gallery search look for faces from that size, as detect and serve', async () => {
    const gallery = path.join(work, 'all.json');
    // bbt3 at 30 %: five faces of 16–22 px (their boxes' larger side).
    const small = path.join(work, 'bbt3-small.png');
    const group = sharedPath('faces', 'face-api.js', 'bbt3.jpg');
    const { width } = await sharp(group).metadata();
    await sharp(group)
      .resize(Math.round(width! * 0.3))
      .png()
      .toFile(small);
    const rows = async (...args: string[]) => {
      const run = await cli(...args, small, '--gallery', gallery, '--json');
      expect(run.code, run.stderr).toBe(0);
      return (JSON.parse(run.stdout) as Row[]).map((r) => r.identity);
    };
    expect(await rows('recognize')).toHaveLength(5);
    expect(await rows('recognize', '--min-face-size', '60')).toEqual(['no face']);
    const search = await cli('gallery', 'search', gallery, small, '--min-face-size', '60', '--json');
    expect(search.code, search.stderr).toBe(0);
    expect((JSON.parse(search.stdout) as Row[]).map((r) => r.identity)).toEqual(['no face']);
    for (const [command, value, accepted] of [
      [['recognize', small, '--gallery', gallery], '5000', 'an integer from 12 to 4096'],
      [['gallery', 'search', gallery, small], '20.5', 'an integer from 12 to 4096'],
      [['serve', '--gallery', gallery], '20.5', 'an integer from 12 to 4096'],
    ] as const) {
      const refused = await cli(...command, '--min-face-size', value);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`--min-face-size must be ${accepted}, got "${value}"`);
    }
  });

  it("--jsonl gives --json's rows one per line (recognize, gallery search, embed with and without --detect)", async () => {
    const gallery = path.join(work, 'all.json');
    const junk = path.join(work, 'junk.jpg');
    await writeFile(junk, 'not an image');
    const images = [...probes(['amy', 'raj']), junk];
    for (const command of [
      // On worker threads: the rows still come in the images' order.
      ['recognize', ...images, '--gallery', gallery, '--workers', '2'],
      ['gallery', 'search', gallery, ...images],
      ['embed', ...images, '--embedder', 'faceapi-resnet', '--max-batch-size', '3'],
      ['embed', '--detect', ...images, '--embedder', 'faceapi-resnet'],
    ]) {
      const [json, lines] = [await cli(...command, '--json'), await cli(...command, '--jsonl')];
      expect([json.code, json.exitCode, lines.code, lines.exitCode], lines.stderr).toEqual([0, 2, 0, 2]);
      const rows = JSON.parse(json.stdout) as unknown[];
      expect(rows.length).toBeGreaterThanOrEqual(images.length);
      expect(
        lines.stdout
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line)),
      ).toEqual(rows);
    }
  });
});
