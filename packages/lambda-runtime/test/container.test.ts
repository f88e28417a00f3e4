import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  EmbedderMismatchError,
  type FaceProvider,
  FileGallery,
  type Gallery,
  type GalleryEmbedderInfo,
  MODELS,
} from '@facerec/framework';
import { describeWithSharedData, sharedMirrorStore } from '@facerec/framework/testing';
import { S3GalleryStore } from '@facerec/gallery-s3';
import { composeRecognition, createPipelineContainer, loadConfig, TOKENS } from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startLocalS3, TEST_BUCKET } from '../../gallery-s3/test/s3rver.js';
import { PIPELINE_DATA, pipelineParts } from './fixtures.js';

/** What an embedder of the registry says of itself, with these weights; no model is loaded. */
const described = (id: string, weightsSha256?: string): GalleryEmbedderInfo => {
  const { description, options } = MODELS.resolveEmbedder(id, {});
  return {
    modelId: description.modelId(options),
    weightsSha256,
    dimension: description.dimension,
    preprocessing: description.preprocessing,
  };
};
/** A one-person gallery of `embedder`. */
const galleryOf = (embedder: GalleryEmbedderInfo, who: string) =>
  FileGallery.create({
    embedder,
    identities: [
      {
        name: who,
        examples: [
          { source: 'a.jpg', embedding: Array.from({ length: embedder.dimension }, (_, i) => (i % 7) - 3) },
        ],
      },
    ],
    threshold: 0.5,
  });
/** A provider whose embedder only describes itself (nothing here embeds). */
const describing = (embedder: GalleryEmbedderInfo) =>
  ({ embedder: async () => embedder }) as unknown as FaceProvider;
const queues = { FACEREC_REQUEST_QUEUE_URL: 'requests', FACEREC_RESPONSE_QUEUE_URL: 'responses' };

describe('the recognition composition, with a store that changes', () => {
  it('refuses a later version enrolled with other weights than the loaded model (the first recorded none)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-compose-'));
    try {
      const file = path.join(dir, 'g.json');
      await galleryOf(described('faceapi-resnet'), 'first').save(file);
      const config = loadConfig({
        ...queues,
        FACEREC_EMBEDDER: 'faceapi-resnet',
        FACEREC_GALLERY: file,
        FACEREC_GALLERY_REFRESH_SECONDS: '0',
      });
      const c = createPipelineContainer(config, {
        transport: new InMemoryQueueTransport(),
        provider: describing(described('faceapi-resnet', 'a'.repeat(64))),
      });
      const gallery = await c.resolve<Promise<Gallery>>(TOKENS.gallery);
      await new Promise((r) => setTimeout(r, 20));
      await galleryOf(described('faceapi-resnet', 'b'.repeat(64)), 'second').save(file);
      expect(await (gallery as unknown as { refresh(): Promise<string> }).refresh()).toBe('refused');
      expect(await gallery.identities()).toEqual(['first']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('closes the S3 store it opened when the gallery cannot be used, at each try', async () => {
    const s3 = await startLocalS3();
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S3RVER');
    vi.stubEnv('AWS_REGION', 'us-east-1');
    const close = vi.spyOn(S3GalleryStore.prototype, 'close');
    try {
      const key = `g/${randomUUID()}.json`;
      const body = galleryOf(described('faceapi-resnet'), 'alice').toText();
      await s3.client().send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: key, Body: body }));
      // FACEREC_EMBEDDER unset: the default, inception-resnet-v1, for a faceapi-resnet gallery.
      const config = loadConfig({
        ...queues,
        FACEREC_GALLERY: `s3://${TEST_BUCKET}/${key}`,
        FACEREC_S3_ENDPOINT: s3.endpoint,
        AWS_REGION: 'us-east-1',
      });
      const c = createPipelineContainer(config, {
        transport: new InMemoryQueueTransport(),
        provider: describing(described('inception-resnet-v1')),
      });
      for (let i = 0; i < 3; i++) {
        const error = await composeRecognition(c).catch((e: unknown) => e);
        expect(EmbedderMismatchError.isInstance(error), String(error)).toBe(true);
      }
      expect(close).toHaveBeenCalledTimes(3);
    } finally {
      close.mockRestore();
      vi.unstubAllEnvs();
      await s3.stop();
    }
  });
});

describeWithSharedData('the recognition composition', PIPELINE_DATA, () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("says a gallery of another embedder is one, rather than failing to load the configured embedder's model", async () => {
    // A faceapi-resnet gallery, and FACEREC_EMBEDDER left unset: the default, inception-resnet-v1, whose VGGFace2
    // weights the offline mirror does not hold (loading them fails as a download failure).
    dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-compose-'));
    const file = path.join(dir, 'gallery.json');
    await writeFile(file, (await pipelineParts()).gallery.toText());
    const config = loadConfig({
      FACEREC_REQUEST_QUEUE_URL: 'requests',
      FACEREC_RESPONSE_QUEUE_URL: 'responses',
      FACEREC_GALLERY: file,
    });
    const provider = createOnnxProvider({ modelStore: await sharedMirrorStore(path.join(dir, 'cache')) });
    const error = await composeRecognition(
      createPipelineContainer(config, { transport: new InMemoryQueueTransport(), provider }),
    ).catch((e: unknown) => e);
    expect(EmbedderMismatchError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /enrolled with embedder "faceapi-resnet" .*but the embedder offered is "inception-resnet-v1\/vggface2"/,
    );
  });
});
