import { InvalidOptionsError } from '@facerec/framework';
import { loadConfig } from '@facerec/lambda-runtime';
import { describe, expect, it } from 'vitest';

const queues = {
  FACEREC_REQUEST_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/requests',
  FACEREC_RESPONSE_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/responses',
};

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    expect(loadConfig(queues)).toMatchObject({
      provider: 'onnx',
      embedder: 'inception-resnet-v1',
      weights: 'vggface2',
      maxFaces: 32,
      minFaceSize: 20,
      maxImagePixels: 25_000_000,
      warmUp: { width: 1280, height: 720 },
      gallery: undefined,
    });
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
  ])('names the bad variable: %o', (bad, name) => {
    expect(() => loadConfig({ ...queues, ...bad })).toThrow(InvalidOptionsError);
    expect(() => loadConfig({ ...queues, ...bad })).toThrow(name);
  });

  it('names every missing required variable', () => {
    expect(() => loadConfig({})).toThrow(/FACEREC_REQUEST_QUEUE_URL.*FACEREC_RESPONSE_QUEUE_URL/);
  });
});
