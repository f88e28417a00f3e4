import { InvalidOptionsError, MODELS } from '@facerec/framework';
import { fakeDetectorDescription } from '@facerec/framework/testing';
import { loadConfig, unknownVariables } from '@facerec/lambda-runtime';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const queues = {
  FACEREC_REQUEST_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/requests',
  FACEREC_RESPONSE_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/responses',
};

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(queues);
    expect(config.embedder.description.id).toBe('inception-resnet-v1');
    expect(config.embedder.options).toEqual({});
    expect(config).toMatchObject({
      provider: 'onnx',
      detector: 'mtcnn',
      maxFaces: 32,
      minFaceSize: 20,
      maxImagePixels: 25_000_000,
      warmUp: { width: 1280, height: 720 },
      gallery: undefined,
    });
  });

  it('reads decimal numbers', () => {
    const config = loadConfig({
      ...queues,
      FACEREC_GALLERY_REFRESH_SECONDS: '0.5',
      FACEREC_THRESHOLD: String(4.5e-7),
      FACEREC_MAX_FACES: '1000',
      FACEREC_THREADS: '2',
    });
    expect(config).toMatchObject({ maxFaces: 1000, threshold: 4.5e-7, threads: 2 });
    expect(config.galleryStore.refreshSeconds).toBe(0.5);
  });

  it('reads the warm-up frame size, or off', () => {
    expect(loadConfig({ ...queues, FACEREC_WARMUP: '1920x1080' }).warmUp).toEqual({
      width: 1920,
      height: 1080,
    });
    expect(loadConfig({ ...queues, FACEREC_WARMUP: 'off' }).warmUp).toBeUndefined();
  });

  it.each([
    [{ FACEREC_WARMUP: '1280' }, 'FACEREC_WARMUP'],
    [{ FACEREC_WARMUP: '0x720' }, 'FACEREC_WARMUP'],
    [{ FACEREC_WARMUP: 'on' }, 'FACEREC_WARMUP'],
    [{ FACEREC_PROVIDER: 'torch' }, 'FACEREC_PROVIDER'],
    [{ FACEREC_MIN_FACE_SIZE: '4' }, 'FACEREC_MIN_FACE_SIZE'],
    // Larger than the largest frame the handler takes (25 MP by default): it would exhaust memory at init.
    [{ FACEREC_WARMUP: '99999x99999' }, 'FACEREC_WARMUP'],
    [{ FACEREC_WARMUP: '1920x1080', FACEREC_MAX_IMAGE_PIXELS: '1000000' }, 'FACEREC_WARMUP'],
    // Only decimal numbers: not blank (coerced to 0), hex, digit separators or Infinity.
    [{ FACEREC_GALLERY_REFRESH_SECONDS: ' ' }, 'FACEREC_GALLERY_REFRESH_SECONDS'],
    [{ FACEREC_MAX_BODY_BYTES: '0x10000' }, 'FACEREC_MAX_BODY_BYTES'],
    [{ FACEREC_MAX_FACES: '1_000' }, 'FACEREC_MAX_FACES'],
    [{ FACEREC_GALLERY_REFRESH_SECONDS: 'Infinity' }, 'FACEREC_GALLERY_REFRESH_SECONDS'],
    [{ FACEREC_THRESHOLD: '-0.5' }, 'FACEREC_THRESHOLD'],
    [{ FACEREC_THREADS: '2.5' }, 'FACEREC_THREADS'],
    // Beyond what a function can honour, or meaningless.
    [{ FACEREC_THRESHOLD: '5' }, 'FACEREC_THRESHOLD'],
    [{ FACEREC_MAX_IMAGE_PIXELS: '1e15' }, 'FACEREC_MAX_IMAGE_PIXELS'],
    [{ FACEREC_MAX_BODY_BYTES: '1000000000000' }, 'FACEREC_MAX_BODY_BYTES'],
    [{ FACEREC_MIN_FACE_SIZE: '1000000000' }, 'FACEREC_MIN_FACE_SIZE'],
    // Typos: spaces, URLs that are no http(s) endpoints, a region that is no region.
    [{ FACEREC_REQUEST_QUEUE_URL: '   ' }, 'FACEREC_REQUEST_QUEUE_URL'],
    [{ FACEREC_WEIGHTS: 'vggface2 ' }, 'FACEREC_WEIGHTS'],
    // A bare word is a misspelt name (a checkpoint's path has a "/" or an extension), refused at start, not at load.
    [{ FACEREC_WEIGHTS: 'vggface' }, 'FACEREC_WEIGHTS'],
    [{ FACEREC_GALLERY: '  ' }, 'FACEREC_GALLERY'],
    [{ FACEREC_SQS_ENDPOINT: 'file:///etc/passwd' }, 'FACEREC_SQS_ENDPOINT'],
    [{ FACEREC_REPLY_QUEUES: 'javascript:alert(1)' }, 'FACEREC_REPLY_QUEUES'],
    [{ AWS_REGION: ' ' }, 'AWS_REGION'],
  ])('names the bad variable: %o', (bad, name) => {
    expect(() => loadConfig({ ...queues, ...bad })).toThrow(InvalidOptionsError);
    expect(() => loadConfig({ ...queues, ...bad })).toThrow(name);
  });

  it.each([
    [{ FACEREC_MAX_FACES: 'abc' }, 'FACEREC_MAX_FACES: expected a whole number from 1 to 1000'],
    [{ FACEREC_MAX_FACES: '0' }, 'FACEREC_MAX_FACES: expected a whole number from 1 to 1000'],
    [{ FACEREC_MAX_FACES: '1e3' }, 'FACEREC_MAX_FACES: expected a whole number from 1 to 1000'],
    [{ FACEREC_THREADS: '2.5' }, 'FACEREC_THREADS: expected a whole number from 1 to 256'],
    [{ FACEREC_THRESHOLD: '-1' }, 'FACEREC_THRESHOLD: expected a number above 0 and at most 2'],
    [{ FACEREC_THRESHOLD: '0' }, 'FACEREC_THRESHOLD: expected a number above 0 and at most 2'],
    [
      { FACEREC_GALLERY_REFRESH_SECONDS: '-5' },
      'FACEREC_GALLERY_REFRESH_SECONDS: expected a number from 0 to 86400',
    ],
    [
      { FACEREC_SQS_ENDPOINT: ' http://localhost:9324' },
      'FACEREC_SQS_ENDPOINT: has spaces at the start or end',
    ],
    [
      { FACEREC_S3_ENDPOINT: 'http://localhost:4569 ' },
      'FACEREC_S3_ENDPOINT: has spaces at the start or end',
    ],
  ])('says what a bad value should be: %o', (bad, message) => {
    expect(() => loadConfig({ ...queues, ...bad })).toThrow(message);
  });

  it('takes numbers as a program writes them', () => {
    expect(loadConfig({ ...queues, FACEREC_THRESHOLD: String(1e-7) }).threshold).toBe(1e-7);
    expect(
      loadConfig({ ...queues, FACEREC_GALLERY_REFRESH_SECONDS: '0.5' }).galleryStore.refreshSeconds,
    ).toBe(0.5);
  });

  it('checks provider and embedder ids against the model registry, listing the valid ones', () => {
    expect(() => loadConfig({ ...queues, FACEREC_EMBEDDER: 'facenet' })).toThrow(
      'FACEREC_EMBEDDER: "facenet" is not one of inception-resnet-v1, faceapi-resnet',
    );
    expect(() => loadConfig({ ...queues, FACEREC_PROVIDER: 'torch' })).toThrow(
      'FACEREC_PROVIDER: "torch" is not one of onnx, tfjs',
    );
  });

  it('takes a detector of its registry (FACEREC_DETECTOR), giving minFaceSize only to one that takes it', () => {
    expect(loadConfig(queues)).toMatchObject({ detector: 'mtcnn', detectorOptions: { minFaceSize: 20 } });
    const plain = fakeDetectorDescription({ id: 'plain', options: z.strictObject({}) }); // no options
    const registry = MODELS.with(plain);
    expect(loadConfig({ ...queues, FACEREC_DETECTOR: 'plain' }, registry)).toMatchObject({
      detector: 'plain',
      detectorOptions: {},
    });
    expect(() =>
      loadConfig({ ...queues, FACEREC_DETECTOR: 'plain', FACEREC_MIN_FACE_SIZE: '40' }, registry),
    ).toThrow('FACEREC_MIN_FACE_SIZE: the detector "plain" takes no minFaceSize option; unset it');
    expect(() => loadConfig({ ...queues, FACEREC_DETECTOR: 'plain' })).toThrow(/FACEREC_DETECTOR/);
  });

  it("turns FACEREC_WEIGHTS into the embedder's options (embedders without weights ignore it)", () => {
    const irv1 = loadConfig({ ...queues, FACEREC_WEIGHTS: 'casia-webface' });
    expect(irv1.embedder.options).toEqual({ weights: 'casia-webface' });
    expect(irv1.embedder.description.modelId(irv1.embedder.options)).toBe(
      'inception-resnet-v1/casia-webface',
    );
    const faceapi = loadConfig({ ...queues, FACEREC_EMBEDDER: 'faceapi-resnet' });
    expect(faceapi.embedder.description.preprocessing.crop).toEqual({
      size: { width: 150, height: 150 },
      shape: 'eyes-mouth',
      margin: 0,
    });
  });

  it('turns FACEREC_PRECISION into the embedder option, fp32 by default, and refuses other values', () => {
    expect(loadConfig(queues).embedder.options).not.toHaveProperty('precision');
    expect(loadConfig({ ...queues, FACEREC_PRECISION: 'fp32' }).embedder.options).toEqual({});
    const int8 = loadConfig({ ...queues, FACEREC_EMBEDDER: 'faceapi-resnet', FACEREC_PRECISION: 'int8' });
    expect(int8.embedder.options).toEqual({ precision: 'int8' });
    // The same model id as fp32: a gallery enrolled with the fp32 embedder is matched by the int8 one.
    expect(int8.embedder.description.modelId(int8.embedder.options)).toBe('faceapi-resnet');
    expect(() => loadConfig({ ...queues, FACEREC_PRECISION: 'fp16' })).toThrow(
      /FACEREC_PRECISION: "fp16" is not one of fp32, int8/,
    );
  });

  it('names every missing required variable', () => {
    expect(() => loadConfig({})).toThrow(
      /FACEREC_REQUEST_QUEUE_URL: required, not set.*FACEREC_RESPONSE_QUEUE_URL: required, not set/,
    );
    // The embedder's problem too, in the same round (not once the others are fixed and deployed).
    expect(() => loadConfig({ FACEREC_WEIGHTS: 'vggface' })).toThrow(
      /FACEREC_RESPONSE_QUEUE_URL: required, not set; FACEREC_EMBEDDER \/ FACEREC_WEIGHTS \/ FACEREC_PRECISION: embedder inception-resnet-v1: weights: "vggface" is neither/,
    );
  });
});

describe('loadConfig for one function', () => {
  it('names a missing FACEREC_GALLERY with the other missing variables for recognition, not for detection', () => {
    expect(() => loadConfig({}, MODELS, { role: 'recognition' })).toThrow(
      '@facerec/lambda-runtime configuration: FACEREC_REQUEST_QUEUE_URL: required, not set; FACEREC_RESPONSE_QUEUE_URL: required, not set; FACEREC_GALLERY: required for recognition, not set',
    );
    expect(() => loadConfig(queues, MODELS, { role: 'recognition' })).toThrow(
      /configuration: FACEREC_GALLERY: required for recognition, not set$/,
    );
    expect(
      loadConfig({ ...queues, FACEREC_GALLERY: 'g.json' }, MODELS, { role: 'recognition' }).gallery,
    ).toBe('g.json');
    expect(loadConfig(queues, MODELS, { role: 'detection' }).gallery).toBeUndefined();
    expect(loadConfig(queues).gallery).toBeUndefined();
  });
});

describe('unknownVariables', () => {
  it('names FACEREC_ variables nothing reads, with the known one a typo was meant for', () => {
    expect(
      unknownVariables({
        ...queues,
        FACEREC_TRESHOLD: '0.1',
        FACEREC_MAX_FACE: '1',
        FACEREC_CACHE_DIR: '/tmp/c',
        FACEREC_TFJS_BACKEND: 'wasm',
        FACEREC_SOMETHING_ELSE_ENTIRELY: 'x',
        NOT_FACEREC: 'y',
      }),
    ).toEqual([
      { name: 'FACEREC_MAX_FACE', meant: 'FACEREC_MAX_FACES' },
      { name: 'FACEREC_SOMETHING_ELSE_ENTIRELY' },
      { name: 'FACEREC_TRESHOLD', meant: 'FACEREC_THRESHOLD' },
    ]);
    expect(unknownVariables(queues)).toEqual([]);
    // Names are case-sensitive: one in another case is not read, and is named with the one meant.
    expect(unknownVariables({ facerec_threshold: '1', Facerec_Max_Face: '2' })).toEqual([
      { name: 'Facerec_Max_Face', meant: 'FACEREC_MAX_FACES' },
      { name: 'facerec_threshold', meant: 'FACEREC_THRESHOLD' },
    ]);
  });
  it('takes a name short of a whole part for the one it shortens (4 edits: past the typo limit)', () => {
    expect(unknownVariables({ FACEREC_REQUEST_QUEUE: 'q', FACEREC_GALLERY_REFRESH: '5' })).toEqual([
      { name: 'FACEREC_GALLERY_REFRESH', meant: 'FACEREC_GALLERY_REFRESH_SECONDS' },
      { name: 'FACEREC_REQUEST_QUEUE', meant: 'FACEREC_REQUEST_QUEUE_URL' },
    ]);
  });
});
