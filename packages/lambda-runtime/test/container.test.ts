import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EmbedderMismatchError } from '@facerec/framework';
import { describeWithSharedData, sharedMirrorStore } from '@facerec/framework/testing';
import { composeRecognition, createPipelineContainer, loadConfig } from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterAll, expect, it } from 'vitest';
import { PIPELINE_DATA, pipelineParts } from './fixtures.js';

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
