import { randomUUID } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { describeWithSharedData, sharedMirrorStore } from '@facerec/framework/testing';
import {
  composeRecognition,
  createPipelineContainer,
  type FaceMessage,
  IdempotencyStoreUnavailableError,
  loadConfig,
  responseMessageSchema,
  type SqsBatchHandler,
  type SqsRecord,
  silentLogger,
} from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { type LocalDynamoDb, startDynalite } from './dynalite.js';
import { bbtFaceMessage, PIPELINE_DATA, pipelineParts } from './fixtures.js';

const IDENTITIES = ['amy', 'bernadette', 'howard', 'leonard', 'penny', 'raj', 'sheldon', 'stuart'];

/**
 * Two recognition "containers" (each its own composition root, models and store client: nothing shared in
 * memory) behind one DynamoDB table, configured by environment as on Lambda; every record is delivered to both.
 */
describeWithSharedData('recognition across containers: one DynamoDB idempotency table', PIPELINE_DATA, () => {
  let db: LocalDynamoDb;
  let records: SqsRecord[];
  beforeAll(async () => {
    db = await startDynalite();
    const crops: FaceMessage[] = [];
    for (const identity of IDENTITIES) for (const n of [3, 4]) crops.push(await bbtFaceMessage(identity, n));
    records = Array.from({ length: 100 }, (_, i) => {
      const message: FaceMessage = {
        ...crops[i % crops.length]!,
        request_id: `shared-${i}`,
        frame_id: randomUUID(),
      };
      return {
        messageId: `m-${i}`,
        body: JSON.stringify(message),
        attributes: { ApproximateReceiveCount: '1' },
      };
    });
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await db?.close();
  });

  async function container(transport: InMemoryQueueTransport, table = db.table): Promise<SqsBatchHandler> {
    const { gallery } = await pipelineParts();
    const config = loadConfig({
      FACEREC_EMBEDDER: 'faceapi-resnet',
      FACEREC_REQUEST_QUEUE_URL: 'requests',
      FACEREC_RESPONSE_QUEUE_URL: 'responses',
      FACEREC_IDEMPOTENCY_TABLE: table,
      FACEREC_IDEMPOTENCY_TTL_SECONDS: '7200',
      FACEREC_DYNAMODB_ENDPOINT: db.endpoint,
      AWS_REGION: 'us-east-1',
    });
    const provider = createOnnxProvider({ modelStore: await sharedMirrorStore() });
    return composeRecognition(
      createPipelineContainer(config, { transport, gallery, provider, logger: silentLogger }),
    );
  }

  it('refuses to start on a table that does not exist, naming it (not every face failing later)', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    const error = await container(new InMemoryQueueTransport(), 'no-such-table').catch((e: unknown) => e);
    expect(IdempotencyStoreUnavailableError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /^the idempotency store \(DynamoDB\) has no table "no-such-table" \(in this account and region\): create it/,
    );
  });

  it('answers 100 records delivered twice each, to two containers at once, exactly 100 times', async () => {
    // The SDK's default credential chain, as on Lambda; dynalite checks none.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    const responses = new InMemoryQueueTransport(); // the one response queue both containers send to
    const [a, b] = await Promise.all([container(responses), container(responses)]);
    const started = Date.now();

    // Each container gets every record, in the same batches of 10 at the same time, so that each meets the
    // other's claims in progress; a record failed as "in progress" is delivered to it again.
    const batches = Array.from({ length: 10 }, (_, i) => records.slice(i * 10, i * 10 + 10));
    let inProgressRetries = 0;
    const consume = async (handler: SqsBatchHandler, order: SqsRecord[][]) => {
      for (let batch of order) {
        for (let round = 1; batch.length; round++) {
          expect(round, 'a record stayed in progress').toBeLessThan(50);
          const { batchItemFailures } = await handler({ Records: batch });
          const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
          batch = batch
            .filter((r) => failed.has(r.messageId))
            .map((r) => ({ ...r, attributes: { ApproximateReceiveCount: String(round + 1) } }));
          inProgressRetries += batch.length;
          if (batch.length) await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    await Promise.all([consume(a, batches), consume(b, batches)]);

    const answers = [];
    for (;;) {
      const got = await responses.receive('responses', { waitTimeSeconds: 0 });
      if (!got.length) break;
      await responses.acknowledge('responses', got);
      answers.push(...got.map((m) => responseMessageSchema.parse(JSON.parse(m.body))));
    }
    expect(answers).toHaveLength(100);
    expect(new Set(answers.map((a) => a.request_id)).size).toBe(100);
    const sent = new Map(records.map((r) => [JSON.parse(r.body).request_id, JSON.parse(r.body).frame_id]));
    for (const answer of answers) expect(answer.frame_id).toBe(sent.get(answer.request_id));
    // The containers met each other's claims in progress, and retried those records.
    expect(inProgressRetries).toBeGreaterThan(0);

    // One item per face, completed, without the answer (it names a person; it is never sent twice), and a TTL
    // two hours out.
    const { Items: items = [] } = await db.client().send(new ScanCommand({ TableName: db.table }));
    const faces = items.filter((item) => item.id!.S!.startsWith('shared-'));
    expect(faces).toHaveLength(100);
    for (const item of faces) {
      expect(item.status?.S).toBe('COMPLETED');
      expect(item.data).toBeUndefined();
      const expiration = Number(item.expiration?.N);
      expect(expiration).toBeGreaterThanOrEqual(Math.floor(started / 1000) + 7200);
      expect(expiration).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 7200);
    }
  });
});
