import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type FaceProvider, FileGallery } from '@facerec/framework';
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
import { RESTART_INTERVAL_MS, startEntry } from '../src/lambda/entry.js';
import { bbtFaceMessage, PIPELINE_DATA, pipelineParts } from './fixtures.js';

/**
 * The recognition function with `FACEREC_GALLERY=s3://…`, composed from the environment as on Lambda, against
 * a local S3 (s3rver): one composition (one "container", no cold start in between) sees the gallery object
 * replaced under it.
 */
const silentLogger: PipelineLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

describeWithSharedData('recognition with an S3 gallery: hot swap by ETag', PIPELINE_DATA, () => {
  let s3: LocalS3;
  let client: S3Client;
  let handler: SqsBatchHandler;
  let transport: InMemoryQueueTransport;
  let full: FileGallery;
  let stuart: FaceMessage;
  let provider: FaceProvider;
  const key = `pipeline/${randomUUID()}.json`;
  const warnings: Record<string, unknown>[] = [];
  const upload = (body: string, at = key) =>
    client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: at, Body: body }));
  const configFor = (at: string) =>
    loadConfig({
      FACEREC_EMBEDDER: 'faceapi-resnet',
      FACEREC_REQUEST_QUEUE_URL: 'requests',
      FACEREC_RESPONSE_QUEUE_URL: 'responses',
      FACEREC_GALLERY: `s3://${TEST_BUCKET}/${at}`,
      FACEREC_GALLERY_REFRESH_SECONDS: '0',
      FACEREC_S3_ENDPOINT: s3.endpoint,
      AWS_REGION: 'us-east-1',
    });
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
    const config = configFor(key);
    const logger: PipelineLogger = { ...silentLogger, warn: (_message, extra) => warnings.push(extra ?? {}) };
    transport = new InMemoryQueueTransport();
    provider = createOnnxProvider({ modelStore: await sharedMirrorStore() });
    handler = await composeRecognition(createPipelineContainer(config, { transport, provider, logger }));
  });
  afterAll(async () => {
    vi.restoreAllMocks();
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

  it('a function started before its gallery was uploaded answers once a good one is there, in the same container', async () => {
    const later = `pipeline/${randomUUID()}.json`;
    const infos: { message: string; extra?: Record<string, unknown> }[] = [];
    const entryLogger: PipelineLogger = {
      ...silentLogger,
      info: (message, extra) => infos.push({ message, extra }),
    };
    const entryTransport = new InMemoryQueueTransport();
    let containers = 0;
    const entry = await startEntry('recognition', composeRecognition, (metrics) => {
      containers++;
      return createPipelineContainer(configFor(later), {
        transport: entryTransport,
        provider,
        logger: entryLogger,
        metrics,
      });
    });
    let clock = Date.now();
    vi.spyOn(Date, 'now').mockImplementation(() => clock);
    const first = await entry.started();
    expect(first.failure).toMatchObject({ code: 'GALLERY_NOT_FOUND' });
    // Said for the operator (what FACEREC_GALLERY needs), not as the library's `create: true`.
    expect((first.failure as Error).message).toMatch(/FACEREC_GALLERY: upload a gallery there/);
    expect((first.failure as Error).message).not.toMatch(/create: true/);

    // A gallery of another embedder uploaded by mistake: refused at the next try, which waits for the interval.
    await upload(
      FileGallery.create({
        embedder: { ...full.embedder, modelId: 'inception-resnet-v1/vggface2' },
        threshold: 0.5,
        identities: [],
      }).toText(),
      later,
    );
    expect((await entry.started()).failure).toBe(first.failure);
    clock += RESTART_INTERVAL_MS;
    const second = await entry.started();
    expect(second.failure).toMatchObject({ code: 'EMBEDDER_MISMATCH' });

    // The right one replaces it: the try after the next interval starts the function.
    await upload(full.toText(), later);
    expect((await entry.started()).failure).toBe(second.failure);
    clock += RESTART_INTERVAL_MS;
    const { handler: started } = await entry.started();
    expect(started).toBeTypeOf('function');
    expect(infos).toContainEqual({
      message: 'the recognition function started',
      extra: { failed_starts_before: 2 },
    });
    expect(containers).toBe(1);
    const { batchItemFailures } = await started!({
      Records: [
        { messageId: 'late-1', body: JSON.stringify(stuart), attributes: { ApproximateReceiveCount: '1' } },
      ],
    });
    expect(batchItemFailures).toEqual([]);
    const [answer] = await entryTransport.receive('responses', { waitTimeSeconds: 0 });
    expect(responseMessageSchema.parse(JSON.parse(answer!.body)).result).toBe('stuart');
    vi.mocked(Date.now).mockRestore();
  });

  it('a start that failed for good (a gallery URL no store reads) is not tried again', async () => {
    let containers = 0;
    const entry = await startEntry('recognition', composeRecognition, (metrics) => {
      containers++;
      return createPipelineContainer(
        { ...configFor('x.json'), gallery: `ftp://${TEST_BUCKET}/x.json` },
        { transport, provider, logger: silentLogger, metrics },
      );
    });
    const first = await entry.started();
    expect(first.failure).toMatchObject({ code: 'INVALID_OPTIONS' });
    vi.spyOn(Date, 'now').mockReturnValue(Date.now() + RESTART_INTERVAL_MS);
    expect((await entry.started()).failure).toBe(first.failure);
    vi.mocked(Date.now).mockRestore();
    expect(containers).toBe(1);
  });
});
