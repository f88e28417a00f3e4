import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CACHE_DIR_ENV,
  decodeImage,
  defineDetector,
  encodePng,
  MODELS,
  MODELS_MIRROR_ENV,
  ModelUnavailableError,
  MTCNN,
} from '@facerec/framework';
import { resizeBilinearPil } from '@facerec/framework/internal';
import {
  cosine,
  describeWithSharedData,
  fakeDetector,
  readSyntheticReference,
  type SyntheticReference,
  sharedPath,
} from '@facerec/framework/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  writeStandInMirror,
  writeSyntheticCheckpoint,
} from '../../provider-onnx/test/fixtures/synthetic-checkpoint.js';
import { cli, cliWith, interruptedJsonLines } from './helpers.js';

const REFERENCE = 'reference/inception_resnet_v1_synthetic.json';
/** Faces to calibrate int8 InceptionResnetV1 on (bbt face shots, none of the reference crops). */
const CALIBRATION = 'faces/face-api.js/bbt';
const NEEDED = [REFERENCE, 'reference/crops', 'models/upstream/pnet.pt', CALIBRATION];

type JsonResult = { image: string; embedding?: number[]; error?: string };

describeWithSharedData('facerec embed', NEEDED, () => {
  let work: string;
  let cacheDir: string;
  let checkpoint: string;
  let reference: SyntheticReference;
  const crop = (i: number) => sharedPath('reference', reference.embeddings[i]!.cropPng);

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'facerec-cli-embed-'));
    cacheDir = path.join(work, 'cache');
    reference = await readSyntheticReference(sharedPath(REFERENCE));
    vi.stubEnv(CACHE_DIR_ENV, cacheDir);
    vi.stubEnv(MODELS_MIRROR_ENV, await writeStandInMirror(path.join(work, 'mirror'), reference.keys));
    checkpoint = await writeSyntheticCheckpoint(path.join(work, 'synthetic.pt'), reference.keys);
  });

  afterAll(async () => {
    vi.unstubAllEnvs();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('prints JSON embeddings that match facenet-pytorch (cosine ≥ 0.9999)', async () => {
    const picked = [0, 17, 33, 66];
    const run = await cli('embed', ...picked.map(crop), '--checkpoint', checkpoint, '--json');
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect([run.code, run.exitCode]).toEqual([0, undefined]);
    const results = JSON.parse(run.stdout) as JsonResult[];
    expect(results.map((r) => r.image)).toEqual(picked.map(crop));
    const cosines = results.map((r, i) => cosine(r.embedding!, reference.embeddings[picked[i]!]!.embedding));
    console.log(
      `facerec embed --json vs facenet-pytorch: cosines ${cosines.map((c) => c.toFixed(9)).join(', ')}`,
    );
    for (const r of results) expect(r.embedding).toHaveLength(512);
    for (const c of cosines) expect(c).toBeGreaterThanOrEqual(0.9999);
  });

  it('prints a short summary without --json, diagnostics on stderr', async () => {
    const run = await cli('embed', crop(1), crop(2), '--checkpoint', checkpoint);
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      new RegExp(`^${crop(1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\t512-d\\t\\[-?\\d\\.\\d{4}, .*…\\]$`),
    );
    expect(run.stderr).toMatch(/inception-resnet-v1\/synthetic\.pt \(onnx, 512-d\) loaded in/);
  });

  it('resizes images of another size with the Pillow-exact bilinear resize', async () => {
    const original = await decodeImage(await readFile(crop(5)));
    const big = resizeBilinearPil(original, [0, 0, 160, 160], [203, 187]);
    const bigFile = path.join(work, 'big.png');
    await writeFile(bigFile, await encodePng(big));
    // What the CLI must feed the network: the same resize, done here, saved losslessly.
    const expectedFile = path.join(work, 'expected.png');
    await writeFile(expectedFile, await encodePng(resizeBilinearPil(big, [0, 0, 203, 187], [160, 160])));
    const run = await cli('embed', bigFile, expectedFile, '--checkpoint', checkpoint, '--json');
    expect(run.code).toBe(0);
    const [resized, expected] = JSON.parse(run.stdout) as JsonResult[];
    expect(resized!.embedding).toEqual(expected!.embedding);
    expect(cosine(resized!.embedding!, reference.embeddings[5]!.embedding)).toBeGreaterThan(0.99);
  });

  it('reports unreadable images per image and exits 2, keeping the other results', async () => {
    const notImage = path.join(work, 'notes.png');
    await writeFile(notImage, 'not an image');
    const missing = path.join(work, 'missing.jpg');
    const run = await cli('embed', notImage, crop(3), missing, '--checkpoint', checkpoint, '--json');
    expect([run.code, run.exitCode]).toEqual([0, 2]);
    const results = JSON.parse(run.stdout) as JsonResult[];
    expect(results.map((r) => r.image)).toEqual([notImage, crop(3), missing]);
    expect(results[0]!.error).toMatch(/Not an image/);
    expect(results[2]!.error).toBe(`cannot read ${missing}: no such file`);
    expect(cosine(results[1]!.embedding!, reference.embeddings[3]!.embedding)).toBeGreaterThanOrEqual(0.9999);
    // Named once: the message names the file already.
    expect(run.stderr).toContain(`cannot read ${missing}: no such file`);
    expect(run.stderr).not.toContain(`${missing}: cannot read`);
    expect(run.stderr).toContain(`${notImage}: `);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('gives the same embeddings with a small --max-batch-size', async () => {
    const images = [6, 7, 8, 9, 10].map(crop);
    const small = await cli(
      'embed',
      ...images,
      '--checkpoint',
      checkpoint,
      '--json',
      '--max-batch-size',
      '2',
    );
    const large = await cli('embed', ...images, '--checkpoint', checkpoint, '--json');
    const a = JSON.parse(small.stdout) as JsonResult[];
    const b = JSON.parse(large.stdout) as JsonResult[];
    a.forEach((r, i) => {
      const d = Math.max(...r.embedding!.map((v, k) => Math.abs(v - b[i]!.embedding![k]!)));
      expect(d).toBeLessThanOrEqual(1e-6);
    });
  });

  it('--detect embeds every face of a photo, exactly as the crops detect --crops-dir cuts', async () => {
    const photo = sharedPath('faces', 'face-api.js', 'bbt1.jpg');
    const white = sharedPath('faces', 'face-api.js', 'test', 'white.png');
    const flags = ['--embedder', 'faceapi-resnet'];
    const run = await cli('embed', '--detect', photo, white, ...flags, '--json');
    expect([run.code, run.exitCode], run.stderr).toEqual([0, undefined]);
    type Detected = { image: string; faces: { box: number[]; score: number; embedding: number[] }[] };
    const [group, empty] = JSON.parse(run.stdout) as Detected[];
    // facenet-pytorch finds 4 faces in bbt1.jpg (reference/mtcnn.json) and none in white.png.
    expect(group!.faces).toHaveLength(4);
    expect(empty).toMatchObject({ image: white, faces: [] });
    // The same faces through another path: detect writes the crops, plain embed embeds them.
    const crops = path.join(work, 'bbt1-crops');
    expect((await cli('detect', photo, '--crops-dir', crops, ...flags)).code).toBe(0);
    const files = (await readdir(crops)).sort().map((f) => path.join(crops, f));
    const plain = JSON.parse((await cli('embed', ...files, ...flags, '--json')).stdout) as JsonResult[];
    group!.faces.forEach((face, i) => {
      expect(face.embedding).toHaveLength(128);
      expect(cosine(face.embedding, plain[i]!.embedding!)).toBeGreaterThan(0.999999);
    });
    // Without --json: one line per face on stdout.
    const text = await cli('embed', '--detect', photo, ...flags);
    expect(
      text.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]),
    ).toEqual([0, 1, 2, 3].map((i) => `${photo}#${i}`));
  });

  it('stops on Ctrl-C saying how far it got: with --jsonl, the rows of the batches done are out', {
    timeout: 90_000,
  }, async () => {
    const rows = await interruptedJsonLines<JsonResult>(
      120,
      'embed',
      ...Array(120).fill(crop(0)),
      '--checkpoint',
      checkpoint,
      '--jsonl',
      '--max-batch-size',
      '2',
    );
    for (const row of rows) expect(row.embedding).toHaveLength(512);
  });

  it('warns when an image given to plain embed is not one face crop', async () => {
    const group = sharedPath('faces', 'face-api.js', 'bbt1.jpg');
    const portrait = sharedPath('faces', 'facenet-pytorch', 'kate_siegel.jpg');
    const run = await cli('embed', group, portrait, crop(0), crop(1), '--checkpoint', checkpoint, '--json');
    expect(run.code, run.stderr).toBe(0);
    const results = JSON.parse(run.stdout) as (JsonResult & { warnings?: string[] })[];
    expect(results[0]!.warnings).toEqual([
      '4 faces detected: it looks like a photo, not one face crop (`facerec embed --detect` embeds each face of a photo)',
    ]);
    expect(results[1]!.warnings).toEqual([
      expect.stringMatching(/^the face covers \d+ % of the frame: it looks like a photo/),
    ]);
    expect(results[2]!.warnings).toBeUndefined(); // facenet-pytorch's crop of angelina_jolie's face
    // facenet-pytorch's second "face" in angelina_jolie.jpg is a false detection: no face in its crop.
    expect(results[3]!.warnings).toEqual(['no face detected in it: its embedding may not describe a face']);
    expect(run.stderr).toContain(`warning: ${group}: 4 faces detected`);
  });

  describe('errors: a message on stderr, exit code 2, no stack trace', () => {
    // `CHECKPOINT` stands for the synthetic checkpoint, whose path is known only once the suite runs.
    it.each([
      [
        ['--provider', 'mxnet', '--checkpoint', 'CHECKPOINT'],
        /option '--provider <name>' argument 'mxnet' is invalid\. Allowed choices are onnx, tfjs\./,
      ],
      [
        ['--embedder', 'facenet', '--checkpoint', 'CHECKPOINT'],
        /argument 'facenet' is invalid\. Allowed choices are inception-resnet-v1, faceapi-resnet\./,
      ],
      [
        ['--max-batch-size', '0', '--checkpoint', 'CHECKPOINT'],
        /--max-batch-size must be a positive integer, got "0"/,
      ],
      [['--checkpoint', '/nonexistent/x.pt'], /--checkpoint: no such file: \/nonexistent\/x\.pt/],
      [
        ['--weights', 'vgg'],
        /weights: "vgg" is neither a named model \(vggface2, casia-webface\) nor a checkpoint file \(a path has/,
      ],
    ])('%j', async (flags, message) => {
      const run = await cli('embed', crop(0), ...flags.map((f) => (f === 'CHECKPOINT' ? checkpoint : f)));
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.stdout).toBe('');
    });
  });

  describe('models prepare --embedder inception-resnet-v1 --weights vggface2', () => {
    it('pulls the checkpoint and the detector, converts them to ONNX once, and embed --weights vggface2 uses it', async () => {
      const prepare = ['models', 'prepare', '--embedder', 'inception-resnet-v1', '--weights', 'vggface2'];
      const first = await cli(...prepare);
      expect(first.code).toBe(0);
      expect(first.stderr).toMatch(/trusted on first use/);
      expect(first.stderr).toMatch(/mtcnn-pnet: .*pnet\.pt/);
      expect(first.stderr).toMatch(
        /mtcnn and inception-resnet-v1\/vggface2 ready on onnx in [\d.]+ s \(first use: converted to ONNX and cached\)/,
      );
      const onnx = (await readdir(path.join(cacheDir, 'onnx'))).filter((f) => f.endsWith('.onnx'));
      expect(onnx.length).toBeGreaterThanOrEqual(4); // P-Net, R-Net, O-Net, InceptionResnetV1

      const again = await cli(...prepare);
      expect(again.code).toBe(0);
      expect(again.stderr).toMatch(/ready on onnx in [\d.]+ s \(cache: /);
      expect(again.stderr).not.toMatch(/converted/);

      const run = await cli('embed', crop(4), '--weights', 'vggface2', '--json');
      expect(run.code).toBe(0);
      const [result] = JSON.parse(run.stdout) as JsonResult[];
      // The stand-in holds the synthetic weights plus a logits head, which embedding drops.
      expect(cosine(result!.embedding!, reference.embeddings[4]!.embedding)).toBeGreaterThanOrEqual(0.9999);
    });

    it('models pull only pulls, converting nothing', async () => {
      const run = await cli('models', 'pull', 'mtcnn-pnet', '--json');
      expect(run.code).toBe(0);
      const [row] = JSON.parse(run.stdout) as { name: string; source: string; sha256: string }[];
      expect(row).toMatchObject({ name: 'mtcnn-pnet', source: 'cache' });
      expect(row!.sha256).toMatch(/^[0-9a-f]{64}$/);
      // `models prepare` above already pulled it: now it comes from the cache.
      expect(run.stderr).toMatch(/mtcnn-pnet: .*pnet\.pt \(cache, sha256 /);
      expect(run.stderr).not.toMatch(/ONNX/);
    });

    it('--precision int8 records the calibration folder, and a later prepare (a container build) needs none', async () => {
      const prepare = [
        'models',
        'prepare',
        '--embedder',
        'inception-resnet-v1',
        '--weights',
        'vggface2',
        '--precision',
        'int8',
      ];
      vi.stubEnv('FACEREC_CALIBRATION_DIR', sharedPath(CALIBRATION));
      try {
        const first = await cli(...prepare);
        expect(first.code, first.stderr).toBe(0);
        expect(first.stderr).toContain(`int8 calibrated on ${sharedPath(CALIBRATION)} (`);
      } finally {
        vi.stubEnv('FACEREC_CALIBRATION_DIR', '');
      }
      const onnx = await readdir(path.join(cacheDir, 'onnx'));
      const graphs = onnx.filter((f) => /-int8-.*\.onnx$/.test(f));
      expect(onnx.filter((f) => f.endsWith('-int8-calibration.json'))).toHaveLength(1);
      // It used to ask for the folder again; now the recorded calibration rebuilds nothing.
      const again = await cli(...prepare);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(
        new RegExp(
          `ready on onnx in .*int8 calibration recorded in the cache on \\d{4}-\\d{2}-\\d{2}, from ${sharedPath(CALIBRATION).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
        ),
      );
      expect(again.stderr).toMatch(/mtcnn-pnet: .*pnet\.pt \(cache, sha256 /);
      expect((await readdir(path.join(cacheDir, 'onnx'))).filter((f) => /-int8-.*\.onnx$/.test(f))).toEqual(
        graphs,
      );
    }, 300_000);
  });
});

describeWithSharedData(
  'facerec embed of a crop of another shape',
  ['faces/face-api.js/test', 'reference/face-api.js', 'models/upstream/pnet.pt'],
  () => {
    let work: string;
    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-cli-embed-shape-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
    });
    afterAll(async () => {
      vi.unstubAllEnvs();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("pads a crop of another shape to a square for face-api.js's net, as face-api.js does (not stretched)", async () => {
      // face-api.js's reference descriptors of its own test crops: 122×178 and 150×150.
      const files = ['face_rectangular.png', 'face1.png'].map((f) =>
        sharedPath('faces', 'face-api.js', 'test', f),
      );
      const references = await Promise.all(
        ['faceDescriptorRect.json', 'faceDescriptor1.json'].map(
          async (f) =>
            JSON.parse(await readFile(sharedPath('reference', 'face-api.js', f), 'utf8')) as number[],
        ),
      );
      const run = await cli('embed', ...files, '--embedder', 'faceapi-resnet', '--json');
      expect([run.code, run.exitCode], run.stderr).toEqual([0, undefined]);
      const results = JSON.parse(run.stdout) as JsonResult[];
      const unit = (v: readonly number[]) => {
        const n = Math.hypot(...v);
        return v.map((x) => x / n);
      };
      const distances = results.map((r, i) => {
        const [a, b] = [unit(r.embedding!), unit(references[i]!)];
        return Math.hypot(...a.map((x, k) => x - b[k]!));
      });
      console.log(`embed vs face-api.js's descriptors (unit vectors): ${distances.map((d) => d.toFixed(4))}`);
      // Stretched to 150×150, the rectangular crop was 0.30 away; padded, it is as close as the square one.
      expect(distances[0]).toBeLessThan(0.05);
      expect(distances[1]).toBeLessThan(0.05);
    });

    it("embeds crops without the detector's weights (offline), leaving out only the crop checks; --detect stops", async () => {
      const unavailable = new ModelUnavailableError(
        'mtcnn-pnet',
        'Cannot download model "mtcnn-pnet" (test)',
      );
      const offline = MODELS.with(
        defineDetector({
          ...MTCNN,
          load: () => ({ ...fakeDetector(() => []), ready: () => Promise.reject(unavailable) }),
        }),
      );
      const face = sharedPath('faces', 'face-api.js', 'test', 'face1.png');
      const run = await cliWith(
        { registry: offline },
        'embed',
        face,
        '--embedder',
        'faceapi-resnet',
        '--json',
      );
      expect([run.code, run.exitCode], run.stderr).toEqual([0, undefined]);
      expect((JSON.parse(run.stdout) as JsonResult[])[0]!.embedding).toHaveLength(128);
      expect(run.stderr).toContain(
        'warning: images are not checked for being one face crop: mtcnn cannot be loaded (Cannot download model "mtcnn-pnet" (test))',
      );
      const detect = await cliWith(
        { registry: offline },
        'embed',
        '--detect',
        face,
        '--embedder',
        'faceapi-resnet',
      );
      expect(detect.code).toBe(1);
      expect(detect.stderr).toContain('Cannot download model "mtcnn-pnet" (test)');
    });
  },
);
