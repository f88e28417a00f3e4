import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { FaceEmbedder } from '../contracts/embedder.js';
import { InvalidOptionsError, ModelLoadError, NoSuchModelError } from '../errors.js';
import { MtcnnDetector } from '../mtcnn/detector.js';
import { parseOptions } from '../options.js';
import { fakeDetectorDescription, fakeEmbedderDescription } from '../testing/fakes.js';
import {
  defineEmbedder,
  FACEAPI_RESNET,
  FACENET_PREPROCESSING,
  INCEPTION_RESNET_V1,
  inceptionResnetV1CheckpointPath,
  MTCNN,
} from './builtin.js';
import {
  createFaceProvider,
  faceProviderOptionsSchema,
  implementDetector,
  implementEmbedder,
} from './provider.js';
import { MODELS } from './registry.js';

const loaded: FaceEmbedder[] = [];
/** An embedder double with the facts a provider checks against its registry entry. */
const embedderDouble = (modelId: string, dimension: number, provider = 'test') =>
  ({
    provider,
    modelId,
    dimension,
    preprocessing: FACENET_PREPROCESSING,
    dispose: async () => {},
  }) as FaceEmbedder;
const FAKE = fakeEmbedderDescription<{ scale?: number }>({
  id: 'fake',
  options: z.strictObject({ scale: z.number().optional() }),
  dimension: 2,
  preprocessing: FACENET_PREPROCESSING,
  modelId: ({ scale }) => `fake/${scale ?? 1}`,
  settingsForModelId: (id) => (id.startsWith('fake/') ? {} : undefined),
  load: async (options) => {
    const e = embedderDouble(`fake/${options.scale ?? 1}`, 2);
    loaded.push(e);
    return e;
  },
});

describe('MODELS, the built-in registry', () => {
  it('lists the models, providers and defaults', () => {
    expect(MODELS.detectorIds).toEqual(['mtcnn']);
    expect(MODELS.embedderIds).toEqual(['inception-resnet-v1', 'faceapi-resnet']);
    expect(MODELS.providerNames).toEqual(['onnx', 'tfjs']);
    expect(MODELS.defaults).toEqual({ provider: 'onnx', detector: 'mtcnn', embedder: 'inception-resnet-v1' });
  });

  it('gives each embedder its input and crop policy once, crop size = input size', () => {
    for (const id of MODELS.embedderIds) {
      const { preprocessing } = MODELS.embedder(id);
      expect(preprocessing.crop.size).toEqual(preprocessing.inputSize);
    }
    expect(INCEPTION_RESNET_V1.preprocessing.crop).toEqual({
      size: { width: 160, height: 160 },
      shape: 'box',
      margin: 0,
    });
    expect(FACEAPI_RESNET.preprocessing.crop).toEqual({
      size: { width: 150, height: 150 },
      shape: 'eyes-mouth',
      margin: 0,
    });
  });

  it('maps settings to options, options to model ids and manifest entries, and model ids back', () => {
    const irv1 = MODELS.resolveEmbedder('inception-resnet-v1', { weights: 'casia-webface' });
    expect(irv1.options).toEqual({ weights: 'casia-webface' });
    expect(INCEPTION_RESNET_V1.modelId(irv1.options)).toBe('inception-resnet-v1/casia-webface');
    expect(MODELS.manifestEntries(irv1)).toEqual([
      'mtcnn-pnet',
      'mtcnn-rnet',
      'mtcnn-onet',
      'inception-resnet-v1-casia-webface',
    ]);
    expect(INCEPTION_RESNET_V1.modelId({ weights: '/models/mine.pt' })).toBe('inception-resnet-v1/mine.pt');
    expect(INCEPTION_RESNET_V1.manifestEntries({ weights: '/models/mine.pt' })).toEqual([]);
    const back = MODELS.embedderForModelId('inception-resnet-v1/vggface2');
    expect([back.description.id, back.options]).toEqual(['inception-resnet-v1', { weights: 'vggface2' }]);
    // A gallery built from a local checkpoint records its file name; the caller supplies the path.
    expect(
      MODELS.embedderForModelId('inception-resnet-v1/mine.pt', { weights: '/m/mine.pt' }).options,
    ).toEqual({
      weights: '/m/mine.pt',
    });
    expect(MODELS.embedderForModelId('faceapi-resnet').description).toBe(FACEAPI_RESNET);
    // A checkpoint file without an extension: its id still resolves (a bare word given as weights is refused).
    expect(MODELS.embedderForModelId('inception-resnet-v1/mine').options).toEqual({ weights: './mine' });
    expect(INCEPTION_RESNET_V1.modelId({ weights: './mine' })).toBe('inception-resnet-v1/mine');
    expect(() => MODELS.resolveEmbedder('inception-resnet-v1', { weights: 'mine' })).toThrow(
      /weights: "mine" is neither a named model \(vggface2, casia-webface\) nor a checkpoint file/,
    );
    // One set of weights: asking for others is refused, not silently ignored.
    expect(() => MODELS.resolveEmbedder('faceapi-resnet', { weights: 'vggface2' })).toThrow(
      /faceapi-resnet: has one set of weights .*do not apply \(given "vggface2"\)/,
    );
    expect(MODELS.resolveEmbedder('faceapi-resnet', { weights: undefined }).options).toEqual({});
  });

  it('refuses unknown ids and bad options with errors that list the valid choices', () => {
    expect(() => MODELS.embedder('arcface')).toThrow(NoSuchModelError);
    expect(() => MODELS.embedder('arcface')).toThrow('available: inception-resnet-v1, faceapi-resnet');
    expect(() => MODELS.detector('retinaface')).toThrow('available: mtcnn');
    expect(() => MODELS.provider('torch')).toThrow('valid providers: onnx, tfjs');
    expect(() => MODELS.embedderForModelId('arcface/r100')).toThrow(NoSuchModelError);
    // The model ids a gallery records are listed, not the embedder ids (a bare "inception-resnet-v1" is none).
    expect(() => MODELS.embedderForModelId('inception-resnet-v1')).toThrow(
      'no embedder makes "inception-resnet-v1", the model id the gallery records; the model ids embedders make: inception-resnet-v1/vggface2, faceapi-resnet',
    );
    expect(() => MODELS.resolveEmbedder('inception-resnet-v1', {}, { maxBatchSize: 0 })).toThrow(
      InvalidOptionsError,
    );
    expect(() => MODELS.resolveEmbedder('faceapi-resnet', {}, { batch: 4 })).toThrow(/batch/);
  });

  it('is extended by a new registry, never changed', () => {
    const extended = MODELS.with(FAKE);
    expect(extended.embedderIds).toEqual(['inception-resnet-v1', 'faceapi-resnet', 'fake']);
    expect(MODELS.embedderIds).toEqual(['inception-resnet-v1', 'faceapi-resnet']);
    expect(extended.embedderForModelId('fake/2').description).toBe(FAKE);
    expect(Object.isFrozen(FAKE)).toBe(true);
  });
});

describe('createFaceProvider', () => {
  const provider = (registry = MODELS.with(FAKE)) =>
    createFaceProvider({
      name: 'test',
      registry,
      detectors: [
        implementDetector(MTCNN, (options) => new MtcnnDetector('test', new Promise(() => {}), options)),
      ],
      embedders: [
        implementEmbedder(INCEPTION_RESNET_V1, async () =>
          embedderDouble('inception-resnet-v1/vggface2', 512, 'native'),
        ),
      ],
    });

  it('runs its own implementation, else the registry entry’s provider-free load', async () => {
    expect((await provider().embedder('inception-resnet-v1')).provider).toBe('native');
    expect((await provider().embedder('fake', { scale: 3 })).modelId).toBe('fake/3');
    const detector = provider().detector('mtcnn', { minFaceSize: 40 });
    expect((detector as MtcnnDetector).options.minFaceSize).toBe(40);
  });

  it("says a plugin's failed load() with the model it was loading; facerec's own errors as they are", async () => {
    const failing = (error: Error) =>
      provider(
        MODELS.with(defineEmbedder({ ...FAKE, id: 'broken', load: async () => Promise.reject(error) })),
      );
    const lost = await failing(new Error('ENOENT: my-embedder.onnx not found'))
      .embedder('broken')
      .catch((e: unknown) => e);
    expect(ModelLoadError.isInstance(lost)).toBe(true);
    expect(lost).toMatchObject({
      provider: 'test',
      kind: 'embedder',
      modelId: 'broken',
      code: 'MODEL_LOAD_FAILED',
      message: 'test embedder "broken": its load() failed: ENOENT: my-embedder.onnx not found',
    });
    const own = new InvalidOptionsError('mine', 'no such weights');
    await expect(failing(own).embedder('broken')).rejects.toBe(own);
    // A detector's load is synchronous: a throw is said the same way.
    const detector = fakeDetectorDescription({
      id: 'broken-detector',
      options: z.strictObject({}),
      load: () => {
        throw new TypeError('cannot read model.bin');
      },
    });
    expect(() => provider(MODELS.with(detector)).detector('broken-detector')).toThrow(
      'test detector "broken-detector": its load() failed: cannot read model.bin',
    );
  });

  it('hands a provider-free load() the provider itself, to wrap another model of the registry (MTCNN)', () => {
    // MTCNN from the same provider, larger faces only.
    const wrapped = fakeDetectorDescription({
      id: 'wrapped-mtcnn',
      options: z.strictObject({}),
      load: (_options, context) => context.models!.detector('mtcnn', { minFaceSize: 40 }),
    });
    const detector = provider(MODELS.with(wrapped)).detector('wrapped-mtcnn');
    // The provider's own MTCNN (this test's implementation), with the options the wrapper chose.
    expect(detector).toBeInstanceOf(MtcnnDetector);
    expect((detector as MtcnnDetector).options.minFaceSize).toBe(40);
    expect(detector.provider).toBe('test');
  });

  it('validates options with the registry schema before anything loads', async () => {
    const before = loaded.length;
    await expect(provider().embedder('fake', { scale: 'x' })).rejects.toThrow(InvalidOptionsError);
    await expect(provider().embedder('inception-resnet-v1', { weight: 'vggface2' } as never)).rejects.toThrow(
      /weight/,
    );
    expect(() => provider().detector('mtcnn', { imageSize: 160 } as never)).toThrow(InvalidOptionsError);
    expect(loaded.length).toBe(before);
  });

  it('says which models it can run when the registry has one it cannot', async () => {
    const error = await provider()
      .embedder('faceapi-resnet')
      .catch((e: unknown) => e);
    expect(NoSuchModelError.isInstance(error), String(error)).toBe(true);
    expect((error as NoSuchModelError).available).toEqual(['inception-resnet-v1', 'fake']);
    await expect(provider().embedder('nope')).rejects.toThrow(
      'available: inception-resnet-v1, faceapi-resnet, fake',
    );
  });

  it('says a registry or model store of another copy of the framework is that (zod said "expected X, received X")', () => {
    // What a second installed copy of @facerec/framework hands over: a class of the same name, not this one.
    const copy = { ModelRegistry: class ModelRegistry {}, ModelStore: class ModelStore {} };
    const parse = (options: object) => () => parseOptions(faceProviderOptionsSchema, options, 'provider');
    expect(parse({ registry: new copy.ModelRegistry() })).toThrow(
      "registry: a ModelRegistry from another copy of @facerec/framework than the provider's (two versions installed? `npm ls @facerec/framework` shows them; install one)",
    );
    expect(parse({ modelStore: new copy.ModelStore() })).toThrow(
      /modelStore: a ModelStore from another copy/,
    );
    expect(parse({ registry: {} })).toThrow('registry: expected a ModelRegistry');
    expect(parse({ registry: null })).toThrow('registry: expected a ModelRegistry');
    expect(parse({ registry: MODELS })()).toEqual({ registry: MODELS });
  });

  it('uses an implementation only for the description it was written for', async () => {
    const replaced = MODELS.with(defineEmbedder({ ...FAKE, id: 'inception-resnet-v1' }));
    expect((await provider(replaced).embedder('inception-resnet-v1')).modelId).toBe('fake/1');
    // An entry replacing the built-in one, without a load(): said so, not "no such model".
    const { load: _, ...withoutLoad } = FAKE;
    const bare = MODELS.with(defineEmbedder({ ...withoutLoad, id: 'inception-resnet-v1' }));
    await expect(provider(bare).embedder('inception-resnet-v1')).rejects.toThrow(
      'test implements the built-in embedder "inception-resnet-v1", but this registry\'s entry of that id replaced it and has no load()',
    );
  });

  it('refuses an embedder that does not match its registry entry, and disposes of it', async () => {
    const disposed: string[] = [];
    const loading = (e: FaceEmbedder) => async () =>
      Object.assign(e, { dispose: async () => void disposed.push(e.modelId) });
    const cases: [string, () => Promise<FaceEmbedder>, string][] = [
      ['dimension', loading(embedderDouble('fake/1', 512)), 'it makes 512-d embeddings, the entry says 2'],
      [
        'crop',
        loading({ ...embedderDouble('fake/1', 2), preprocessing: FACEAPI_RESNET.preprocessing }),
        'it takes 150×150 crops, the entry says 160×160',
      ],
      [
        'model id',
        loading(embedderDouble('mine/v1', 2)),
        'its model id is "mine/v1", the entry\'s modelId() gives "fake/1" for these options',
      ],
    ];
    for (const [what, load, issue] of cases) {
      const registry = MODELS.with(defineEmbedder({ ...FAKE, load }));
      const error = await provider(registry)
        .embedder('fake')
        .catch((e: unknown) => e);
      expect(InvalidOptionsError.isInstance(error), what).toBe(true);
      expect((error as Error).message).toBe(
        `test embedder "fake": the embedder loaded does not match its registry entry: ${issue}. Galleries, crops and thresholds are read from the entry; make the entry (defineEmbedder) and the implementation agree`,
      );
    }
    expect(disposed).toEqual(['fake/1', 'fake/1', 'mine/v1']);
  });
});

describe('ModelRegistry checks its embedder entries', () => {
  it('refuses a description a JavaScript caller got wrong, naming the model and the key (it was dropped or failed later)', () => {
    const cases: [object, RegExp][] = [
      [{ ...FAKE, kind: undefined }, /model "fake": .*kind: expected "detector" or "embedder"/],
      [{ ...FAKE, kind: 'embeder' }, /kind: expected "detector" or "embedder"/],
      [{ ...FAKE, modelId: undefined }, /model "fake": .*modelId: expected a function/],
      [{ ...FAKE, settingsForModelId: undefined }, /settingsForModelId: expected a function/],
      [{ ...FAKE, options: undefined }, /options: expected a zod schema of the options/],
      [{ ...FAKE, id: '' }, /id: expected letters, digits/],
      [{ ...FAKE, id: 'my toy,x' }, /model "my toy,x": .*id: expected letters, digits/],
      [
        { ...MTCNN, id: 'm2', manifestEntries: undefined },
        /model "m2": .*manifestEntries: expected a function/,
      ],
    ];
    for (const [description, said] of cases) {
      expect(() => MODELS.with(description as never)).toThrow(InvalidOptionsError);
      expect(() => MODELS.with(description as never)).toThrow(said);
    }
  });

  it('refuses facts no embedder can have: a dimension of 0, a standard deviation of 0, a threshold above 2', () => {
    expect(() => MODELS.with(defineEmbedder({ ...FAKE, dimension: 0 }))).toThrow(
      /ModelRegistry: embedder "fake": dimension: /,
    );
    const std = { ...FACENET_PREPROCESSING, std: [0, 0, 0] as [number, number, number] };
    expect(() => MODELS.with(defineEmbedder({ ...FAKE, preprocessing: std }))).toThrow(/preprocessing\.std/);
    const crop = {
      ...FACENET_PREPROCESSING,
      crop: { ...FACENET_PREPROCESSING.crop, size: { width: 150, height: 150 } },
    };
    expect(() => MODELS.with(defineEmbedder({ ...FAKE, preprocessing: crop }))).toThrow(
      /crop\.size must equal inputSize/,
    );
    const thresholds = { euclidean: { value: 7, measuredOn: 'a guess' } };
    expect(() => MODELS.with(defineEmbedder({ ...FAKE, thresholds }))).toThrow(
      /thresholds\.euclidean\.value/,
    );
  });

  it("refuses two embedders claiming one model id, but keeps an alias spread from another's entry", () => {
    // A wrapper passing face-api's model id through: its galleries would be reopened with face-api's net.
    const clash = defineEmbedder({
      ...FAKE,
      id: 'clash',
      modelId: () => 'faceapi-resnet',
      settingsForModelId: (id) => (id === 'faceapi-resnet' ? {} : undefined),
    });
    expect(() => MODELS.with(clash)).toThrow(
      'ModelRegistry: embedders "faceapi-resnet" and "clash" both claim the model id "faceapi-resnet", which galleries record: a gallery enrolled with one would be matched by the other; give "clash" a model id of its own',
    );
    // Its modelId() gives the built-in's id, claimed by the built-in alone: the one to change is still the new one.
    const borrowed = defineEmbedder({
      ...FAKE,
      id: 'borrowed',
      modelId: () => 'faceapi-resnet',
      settingsForModelId: (id) => (id === 'borrowed' ? {} : undefined),
    });
    expect(() => MODELS.with(borrowed)).toThrow(
      'both claim the model id "faceapi-resnet", which galleries record: a gallery enrolled with one would be matched by the other; give "borrowed" a model id of its own',
    );
    const alias = MODELS.with(
      defineEmbedder({
        ...FACEAPI_RESNET,
        id: 'my-faceapi',
        load: async () => embedderDouble('faceapi-resnet', 128),
      }),
    );
    expect(alias.embedderForModelId('faceapi-resnet').description.id).toBe('faceapi-resnet');
  });
});

describe('inceptionResnetV1CheckpointPath', () => {
  it('gives the absolute path of a checkpoint file, and names a missing file or a folder as bad weights', async () => {
    const here = fileURLToPath(import.meta.url);
    expect(await inceptionResnetV1CheckpointPath('p', path.relative(process.cwd(), here))).toBe(here);
    await expect(inceptionResnetV1CheckpointPath('p', '/nonexistent/x.pt')).rejects.toThrow(
      new InvalidOptionsError(
        'p',
        'weights "/nonexistent/x.pt" is neither a named model (vggface2, casia-webface) nor a checkpoint file (no such file: /nonexistent/x.pt)',
      ),
    );
    const folder = path.dirname(here);
    await expect(inceptionResnetV1CheckpointPath('p', folder)).rejects.toThrow(`(${folder} is not a file)`);
  });
});
