import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { encodeJpeg, type FaceEmbedder, FacerecError } from '@facerec/framework';
import { describeWithSharedData } from '@facerec/framework/testing';
import {
  createRecognitionHandler,
  InMemoryIdempotencyStore,
  responseMessageSchema,
  type SqsRecord,
} from '@facerec/lambda-runtime';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { createSqsTransport } from '@facerec/transport-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, expect, it, vi } from 'vitest';
import { bbtFaceMessage, PIPELINE_DATA, pipelineParts } from './fixtures.js';

const IDENTITIES = ['amy', 'bernadette', 'howard', 'leonard', 'penny', 'raj', 'sheldon', 'stuart'];

async function faceRecord(identity: string, n: number, id = `${identity}${n}`): Promise<SqsRecord> {
  return {
    messageId: `msg-${id}`,
    body: JSON.stringify(await bbtFaceMessage(identity, n, id)),
    attributes: { ApproximateReceiveCount: '1' },
  };
}

describeWithSharedData('recognition handler', PIPELINE_DATA, () => {
  let probes: SqsRecord[];
  beforeAll(async () => {
    probes = [];
    for (const identity of IDENTITIES) probes.push(await faceRecord(identity, 3));
  });

  const drain = async (transport: InMemoryQueueTransport) => {
    const out = [];
    for (;;) {
      const batch = await transport.receive('responses', { maxMessages: 10, waitTimeSeconds: 0 });
      if (!batch.length) return out;
      await transport.acknowledge('responses', batch);
      out.push(...batch.map((m) => responseMessageSchema.parse(JSON.parse(m.body))));
    }
  };

  it('embeds a batch together and answers every face with its identity', async () => {
    const { embedder, gallery } = await pipelineParts();
    const transport = new InMemoryQueueTransport();
    const handler = createRecognitionHandler({ embedder, gallery, transport, responseQueue: 'responses' });
    const result = await handler({ Records: probes });
    expect(result.batchItemFailures).toEqual([]);
    const answers = await drain(transport);
    expect(answers).toHaveLength(8);
    const correct = answers.filter((a) => a.request_id === `${a.result}3`).length;
    expect(correct).toBeGreaterThanOrEqual(7);
    for (const a of answers)
      expect(a).toMatchObject({ face_index: 0, face_count: 1, distance: expect.any(Number) });
  });

  it('fails only the records that cannot be processed', async () => {
    const { embedder, gallery } = await pipelineParts();
    const transport = new InMemoryQueueTransport();
    const lines: string[] = [];
    const log = (message: string, extra?: Record<string, unknown>) =>
      lines.push(JSON.stringify({ message, ...extra }));
    const logger = { debug: log, info: log, warn: log, error: log };
    const handler = createRecognitionHandler({
      embedder,
      gallery,
      transport,
      responseQueue: 'responses',
      logger,
    });
    const good = probes.slice(0, 3);
    // A key can carry anything (here, what looks like an embedding): counted in the log, never repeated.
    const secretKey = `embedding${'0.123,'.repeat(30)}`;
    const unknownKey: SqsRecord = {
      messageId: 'unknown-key',
      body: JSON.stringify({ ...JSON.parse(good[0]!.body), [secretKey]: 1 }),
    };
    const badJson: SqsRecord = { messageId: 'bad-json', body: '{nope' };
    const badSchema: SqsRecord = { messageId: 'bad-schema', body: JSON.stringify({ request_id: 'x' }) };
    const badCrop: SqsRecord = {
      messageId: 'bad-crop',
      body: JSON.stringify({
        ...JSON.parse(good[0]!.body),
        request_id: 'crop',
        crop: Buffer.from('not an image').toString('base64'),
      }),
    };
    // Made by hand, not by detection: a crop that is no base64, a face index past the frame's face count.
    const notBase64: SqsRecord = {
      messageId: 'not-base64',
      body: JSON.stringify({ ...JSON.parse(good[0]!.body), request_id: 'b64', crop: '!!!!' }),
    };
    const pastCount: SqsRecord = {
      messageId: 'past-count',
      body: JSON.stringify({
        ...JSON.parse(good[0]!.body),
        request_id: 'idx',
        face_index: 15,
        face_count: 4,
      }),
    };
    const result = await handler({
      Records: [good[0]!, badJson, good[1]!, badSchema, badCrop, unknownKey, notBase64, pastCount, good[2]!],
    });
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual([
      'bad-crop',
      'bad-json',
      'bad-schema',
      'not-base64',
      'past-count',
      'unknown-key',
    ]);
    expect(lines.join('\n')).not.toContain('0.123');
    expect(lines.join('\n')).toContain('1 unknown field; allowed: request_id');
    expect(lines.join('\n')).toContain('crop: not base64 (the crop is a JPEG as standard base64)');
    expect(lines.join('\n')).toContain('invalid face message: face_index must be less than face_count');
    expect((await drain(transport)).map((a) => a.request_id).sort()).toEqual([
      'amy3',
      'bernadette3',
      'howard3',
    ]);
  });

  it('refuses a face cut for another embedder or of another size than its message says; takes one that says nothing', async () => {
    const { embedder, gallery } = await pipelineParts();
    const transport = new InMemoryQueueTransport();
    const lines: string[] = [];
    const log = (message: string, extra?: Record<string, unknown>) =>
      lines.push(JSON.stringify({ message, ...extra }));
    const handler = createRecognitionHandler({
      embedder,
      gallery,
      transport,
      responseQueue: 'responses',
      logger: { debug: log, info: log, warn: log, error: log },
    });
    const message = JSON.parse(probes[0]!.body);
    // What a detection configured for InceptionResnetV1 queues (facenet-pytorch's box crop, 160 px).
    const otherEmbedder: SqsRecord = {
      messageId: 'other-embedder',
      body: JSON.stringify({
        ...message,
        request_id: 'other',
        crop_policy: { size: { width: 160, height: 160 }, shape: 'box', margin: 0 },
      }),
    };
    const small = await encodeJpeg({ width: 100, height: 100, data: new Uint8Array(100 * 100 * 3) }, 90);
    const wrongSize: SqsRecord = {
      messageId: 'wrong-size',
      body: JSON.stringify({ ...message, request_id: 'small', crop: Buffer.from(small).toString('base64') }),
    };
    // A detection older than the field: taken as it is, at the embedder's crop size only.
    const { crop_policy: _, ...older } = JSON.parse(probes[1]!.body);
    const unsaid: SqsRecord = { messageId: 'unsaid', body: JSON.stringify(older) };
    const big = await encodeJpeg({ width: 160, height: 160, data: new Uint8Array(160 * 160 * 3) }, 90);
    const unsaidOther: SqsRecord = {
      messageId: 'unsaid-other-size',
      body: JSON.stringify({ ...older, request_id: 'big', crop: Buffer.from(big).toString('base64') }),
    };
    const result = await handler({ Records: [otherEmbedder, wrongSize, unsaid, unsaidOther, probes[2]!] });
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual([
      'other-embedder',
      'unsaid-other-size',
      'wrong-size',
    ]);
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.message_id === 'unsaid-other-size').reason).toBe(
      "crop: the crop is 160×160 and its message names no crop_policy; this embedder's crops are 150×150 (a detection function deployed for another embedder?)",
    );
    const log1 = lines.map((l) => JSON.parse(l)).find((l) => l.message_id === 'other-embedder');
    expect(log1.reason).toBe(
      "face cut as box 160×160, margin 0, but this function's embedder (faceapi-resnet) takes eyes-mouth " +
        '150×150, margin 0: it was queued by a detection configured for another embedder (FACEREC_EMBEDDER on ' +
        'Lambda; with facerec serve, a queue file written while serving a gallery of another embedder)',
    );
    const log2 = lines.map((l) => JSON.parse(l)).find((l) => l.message_id === 'wrong-size');
    expect(log2.reason).toBe('crop: the crop is 100×100, its message says 150×150');
    expect((await drain(transport)).map((a) => a.request_id).sort()).toEqual([
      probes[1]!.messageId.replace('msg-', ''),
      probes[2]!.messageId.replace('msg-', ''),
    ]);
  });

  it('isolates a face whose embedding throws, and answers the others', async () => {
    const { embedder, gallery } = await pipelineParts();
    // An embedder that fails on any batch holding an all-black face, as a model can fail on one input.
    const fragile: FaceEmbedder = {
      ...embedder,
      preprocessing: embedder.preprocessing,
      embed: async (faces) => {
        if (faces.some((f) => f.data.every((v) => v < 8))) throw new Error('model failure');
        return embedder.embed(faces);
      },
    };
    const black = await encodeJpeg({ width: 150, height: 150, data: new Uint8Array(150 * 150 * 3) }, 90);
    const blackRecord: SqsRecord = {
      messageId: 'black',
      body: JSON.stringify({
        ...JSON.parse(probes[0]!.body),
        request_id: 'black',
        crop: Buffer.from(black).toString('base64'),
      }),
    };
    const transport = new InMemoryQueueTransport();
    const handler = createRecognitionHandler({
      embedder: fragile,
      gallery,
      transport,
      responseQueue: 'responses',
    });
    const result = await handler({ Records: [probes[0]!, blackRecord, probes[1]!] });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'black' }]);
    expect((await drain(transport)).map((a) => a.request_id).sort()).toEqual(['amy3', 'bernadette3']);
  });

  it.each([
    [
      'cannot be reached',
      'GALLERY_UNREACHABLE',
      'cannot reach the Postgres server of postgres://db/faces (ECONNREFUSED)',
      'gallery store unreachable; the batch is delivered again later',
    ],
    [
      'lost its collection (not answering everyone unknown)',
      'GALLERY_NOT_FOUND',
      'no gallery at postgres://db/faces?collection=staff: the collection was deleted',
      'gallery gone from its store; the batch is delivered again later',
    ],
    [
      'was made again for another embedder (not matched against its embeddings)',
      'EMBEDDER_MISMATCH',
      'The gallery was enrolled with embedder "inception-resnet-v1" but the embedder offered is "faceapi-resnet"',
      'gallery made again for another embedder; the batch is delivered again later',
    ],
  ])(
    'hands a batch back when the gallery store %s, saying so (no "internal error")',
    async (_, code, message, said) => {
      const { embedder, gallery } = await pipelineParts();
      const down = Object.create(gallery) as typeof gallery;
      down.match = async () => {
        throw new FacerecError(code, message);
      };
      const logged: { message: string; extra?: Record<string, unknown> }[] = [];
      const log = (message: string, extra?: Record<string, unknown>) => logged.push({ message, extra });
      const transport = new InMemoryQueueTransport();
      const handler = createRecognitionHandler({
        embedder,
        gallery: down,
        transport,
        responseQueue: 'responses',
        logger: { debug: log, info: log, warn: log, error: log },
      });
      const result = await handler({ Records: probes.slice(0, 2) });
      expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual([
        'msg-amy3',
        'msg-bernadette3',
      ]);
      expect(logged.map((l) => l.message)).toContain(said);
      expect(logged.map((l) => l.message)).not.toContain('internal error');
      expect(await drain(transport)).toEqual([]);
    },
  );

  it('answers a redelivered face only once', async () => {
    const { embedder, gallery } = await pipelineParts();
    const transport = new InMemoryQueueTransport();
    const handler = createRecognitionHandler({ embedder, gallery, transport, responseQueue: 'responses' });
    // A duplicate within the batch shares its face's outcome; a later one finds the face completed.
    const again = { ...probes[0]!, messageId: 'redelivery', attributes: { ApproximateReceiveCount: '2' } };
    expect((await handler({ Records: [probes[0]!, probes[1]!, again] })).batchItemFailures).toEqual([]);
    expect((await handler({ Records: [again, probes[1]!] })).batchItemFailures).toEqual([]);
    const answers = await drain(transport);
    expect(answers.map((a) => `${a.request_id}:${a.face_index}`).sort()).toEqual(['amy3:0', 'bernadette3:0']);
    for (const a of answers)
      expect(a.frame_id).toBe(
        JSON.parse(probes.find((p) => p.messageId === `msg-${a.request_id}`)!.body).frame_id,
      );
  });

  it('fails a duplicate whose face is still in progress elsewhere, and answers it once that attempt fails', async () => {
    const { embedder, gallery } = await pipelineParts();
    const transport = new InMemoryQueueTransport();
    const idempotency = new InMemoryIdempotencyStore();
    // The first attempt is slow, then fails (its one-face-at-a-time retry too): it holds the face while the
    // duplicate arrives.
    let failing = true;
    let started = false;
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const flaky: FaceEmbedder = {
      ...embedder,
      preprocessing: embedder.preprocessing,
      embed: async (faces) => {
        if (failing) {
          started = true;
          await slow;
          throw new Error('first attempt fails');
        }
        return embedder.embed(faces);
      },
    };
    const options = { embedder: flaky, gallery, transport, responseQueue: 'responses', idempotency };
    const first = createRecognitionHandler(options);
    const second = createRecognitionHandler(options);
    const firstAttempt = first({ Records: [probes[2]!] });
    await vi.waitFor(() => expect(started).toBe(true));
    const duplicate = { ...probes[2]!, messageId: 'dup', attributes: { ApproximateReceiveCount: '2' } };
    // Not acknowledged: the attempt in progress may still fail.
    expect((await second({ Records: [duplicate] })).batchItemFailures).toEqual([{ itemIdentifier: 'dup' }]);
    release();
    expect((await firstAttempt).batchItemFailures).toEqual([{ itemIdentifier: probes[2]!.messageId }]);
    expect(await drain(transport)).toEqual([]);
    failing = false;
    // The redelivery is processed again, once; a later one is acknowledged without a second answer.
    expect((await second({ Records: [duplicate] })).batchItemFailures).toEqual([]);
    expect((await first({ Records: [probes[2]!] })).batchItemFailures).toEqual([]);
    expect((await drain(transport)).map((a) => a.request_id)).toEqual(['howard3']);
  });

  it('fails the records whose answer SQS would not take, and answers them on redelivery', async () => {
    const { embedder, gallery } = await pipelineParts();
    const sqs = mockClient(SQSClient);
    const sent: string[] = [];
    let rejectFirst = true;
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string; MessageBody: string }[] }) => {
      const failing = rejectFirst ? input.Entries[0]!.Id : undefined;
      for (const e of input.Entries) if (e.Id !== failing) sent.push(JSON.parse(e.MessageBody).request_id);
      return {
        Successful: input.Entries.filter((e) => e.Id !== failing).map((e) => ({ Id: e.Id, MessageId: e.Id })),
        Failed: failing ? [{ Id: failing, Code: 'InternalError', SenderFault: false, Message: 'down' }] : [],
      };
    });
    const transport = createSqsTransport({
      client: new SQSClient({ region: 'us-east-1' }),
      sleep: async () => undefined,
    });
    const handler = createRecognitionHandler({
      embedder,
      gallery,
      transport,
      responseQueue: 'https://q/responses',
    });
    const first = await handler({ Records: probes.slice(0, 3) });
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: probes[0]!.messageId }]);
    expect(sent.sort()).toEqual(['bernadette3', 'howard3']);
    rejectFirst = false;
    const second = await handler({ Records: [probes[0]!] });
    expect(second.batchItemFailures).toEqual([]);
    expect(sent.sort()).toEqual(['amy3', 'bernadette3', 'howard3']);
    sqs.restore();
  });

  it("hands the faces back before the invocation's deadline when SQS never answers", async () => {
    const { embedder, gallery } = await pipelineParts();
    const sqs = mockClient(SQSClient);
    sqs.on(SendMessageBatchCommand).callsFake(() => new Promise(() => undefined));
    const handler = createRecognitionHandler({
      embedder,
      gallery,
      transport: createSqsTransport({ client: new SQSClient({ region: 'us-east-1' }) }),
      responseQueue: 'https://q/responses',
    });
    const started = Date.now();
    // As Lambda's context says it: 4 s left.
    const result = await handler({ Records: probes.slice(0, 2) }, { getRemainingTimeInMillis: () => 4000 });
    expect(Date.now() - started).toBeLessThan(3500);
    expect(result.batchItemFailures).toEqual(
      probes.slice(0, 2).map((p) => ({ itemIdentifier: p.messageId })),
    );
    sqs.restore();
  });
});
