import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { FileGallery } from '@facerec/framework';
import { describeWithSharedData, sharedMirrorStore } from '@facerec/framework/testing';
import {
  composeRecognition,
  createPipelineContainer,
  type FaceMessage,
  loadConfig,
  type PipelineLogger,
  responseMessageSchema,
  type SqsBatchHandler,
} from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { type LocalS3, startLocalS3, TEST_BUCKET } from '../../gallery-s3/test/s3rver.js';
import { bbtFaceMessage, PIPELINE_DATA, pipelineParts } from './fixtures.js';

/**
 * The recognition function with `FACEREC_GALLERY=s3://…`, composed from the environment as on Lambda, against
 * a local S3 (s3rver): one composition (one "container", no cold start in between) sees the gallery object
 * replaced under it.
 */
describeWithSharedData('recognition with an S3 gallery: hot swap by ETag', PIPELINE_DATA, () => {
  let s3: LocalS3;
  let client: S3Client;
  let handler: SqsBatchHandler;
  let transport: InMemoryQueueTransport;
  let full: FileGallery;
  let stuart: FaceMessage;
  const key = `pipeline/${randomUUID()}.json`;
  const warnings: Record<string, unknown>[] = [];
  const upload = (body: string) =>
    client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: key, Body: body }));
  let sent = 0;
  /** Recognises stuart's image 3 (not enrolled) once more; resolves to the answer. */
  const recognise = async () => {
    const message = { ...stuart, request_id: `stuart-${++sent}` };
    const { batchItemFailures } = await handler({
      Records: [
        {
          messageId: `m${sent}`,
          body: JSON.stringify(message),
          attributes: { ApproximateReceiveCount: '1' },
        },
      ],
    });
    expect(batchItemFailures).toEqual([]);
    const [answer] = await transport.receive('responses', { waitTimeSeconds: 0 });
    await transport.acknowledge('responses', [answer!]);
    return responseMessageSchema.parse(JSON.parse(answer!.body)).result;
  };

  beforeAll(async () => {
    s3 = await startLocalS3();
    client = s3.client();
    ({ gallery: full } = await pipelineParts());
    stuart = await bbtFaceMessage('stuart', 3);
    // Everyone but stuart, at first.
    await upload(full.withoutIdentities(['stuart']).toText());
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S3RVER');
    vi.stubEnv('AWS_REGION', 'us-east-1'); // Lambda sets it; the S3 client reads it
    const config = loadConfig({
      FACEREC_EMBEDDER: 'faceapi-resnet',
      FACEREC_REQUEST_QUEUE_URL: 'requests',
      FACEREC_RESPONSE_QUEUE_URL: 'responses',
      FACEREC_GALLERY: `s3://${TEST_BUCKET}/${key}`,
      FACEREC_GALLERY_REFRESH_SECONDS: '0',
      FACEREC_S3_ENDPOINT: s3.endpoint,
      AWS_REGION: 'us-east-1',
    });
    const logger: PipelineLogger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (_message, extra) => warnings.push(extra ?? {}),
      error: () => undefined,
    };
    transport = new InMemoryQueueTransport();
    const provider = createOnnxProvider({ modelStore: await sharedMirrorStore() });
    handler = await composeRecognition(createPipelineContainer(config, { transport, provider, logger }));
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await s3?.stop();
  });

  it('answers a newly uploaded person by name without a restart, and keeps the old version when the new one is bad', async () => {
    expect(await recognise()).toBe('unknown');

    await upload(full.toText());
    expect(await recognise()).toBe('stuart');

    // A truncated upload: refused, the loaded gallery keeps answering.
    const text = full.withoutIdentities(['amy']).toText();
    await upload(text.slice(0, text.length - 100));
    expect(await recognise()).toBe('stuart');
    expect(warnings.at(-1)).toMatchObject({ reason: 'INVALID_GALLERY' });

    // A gallery of another embedder (same people, InceptionResnetV1's model id): refused too.
    const other = FileGallery.create({
      embedder: { ...full.embedder, modelId: 'inception-resnet-v1/vggface2' },
      threshold: 0.5,
      identities: full.names.map((name) => ({ name, examples: full.examples(name) })),
    });
    await upload(other.toText());
    expect(await recognise()).toBe('stuart');
    expect(warnings.at(-1)).toMatchObject({
      reason: 'EMBEDDER_MISMATCH',
      gallery_model: 'inception-resnet-v1/vggface2',
    });
    expect(JSON.stringify(warnings)).not.toContain('"embedding"');

    // A good version after the bad ones is taken again.
    await upload(full.withoutIdentities(['stuart']).toText());
    expect(await recognise()).toBe('unknown');
  });
});
