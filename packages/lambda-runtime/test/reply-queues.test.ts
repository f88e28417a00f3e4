import {
  type CropPolicy,
  encodeJpeg,
  type FaceDetector,
  type FaceEmbedder,
  type Gallery,
  type RgbImage,
} from '@facerec/framework';
import {
  createDetectionHandler,
  createRecognitionRecordHandler,
  type FaceMessage,
  faceMessageSchema,
  loadConfig,
  queueResponses,
  type ResponseMessage,
  responseMessageSchema,
  runWorkload,
  type WorkloadFrame,
} from '@facerec/lambda-runtime';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { describe, expect, it } from 'vitest';

/**
 * Issue #16, part 3 on AWS: several clients share one deployment, each naming its own reply queue (`reply_to`,
 * from the allow-list `FACEREC_REPLY_QUEUES`). The handlers run as on Lambda, on the in-memory transport (the
 * project's SQS-semantics queue: visibility timeouts, receipts, receive counts); the models are replaced by
 * stand-ins whose answer is readable from the frame, so a misrouted or mixed answer shows.
 */

const REQUESTS = 'https://sqs.eu-west-1.amazonaws.com/123456789012/requests';
const RESPONSES = 'https://sqs.eu-west-1.amazonaws.com/123456789012/responses';
const REPLY_A = 'https://sqs.eu-west-1.amazonaws.com/123456789012/reply-a';
const REPLY_B = 'https://sqs.eu-west-1.amazonaws.com/123456789012/reply-b';
const PEOPLE = ['amy', 'bernadette', 'howard', 'leonard', 'penny', 'raj'];

const solid = (width: number, height: number, level: number): RgbImage => ({
  width,
  height,
  data: new Uint8Array(width * height * 3).fill(level),
});

/** A frame of `faces` faces of `PEOPLE[person]`: a grey level of 40 × person, 16 + 8 × faces pixels wide. */
async function frame(person: number, faces: number): Promise<string> {
  return Buffer.from(await encodeJpeg(solid(16 + 8 * faces, 16, 40 * person))).toString('base64');
}

/** Reads a frame back: its width is the face count, every crop has the frame's grey level. */
const detector: Pick<FaceDetector, 'detectFaces'> = {
  async detectFaces([image]) {
    const count = Math.round((image!.width - 16) / 8);
    const faces = Array.from({ length: count }, (_, i) => ({
      box: [i * 8, 0, i * 8 + 8, 8] as [number, number, number, number],
      score: 0.99,
      landmarks: [] as never,
    }));
    const crop = solid(16, 16, image!.data[0]!);
    return [{ faces, crops: faces.map((detection) => ({ detection, cropBox: detection.box, image: crop })) }];
  },
};
/** A one-dimensional embedding, the crop's grey level; the gallery names the person of that level. */
const CROP: CropPolicy = { size: { width: 16, height: 16 }, shape: 'box', margin: 0 };
const embedder = {
  preprocessing: { inputSize: { width: 16, height: 16 }, crop: CROP },
  embed: async (faces: readonly RgbImage[]) => faces.map((f) => Float32Array.of(f.data[0]!)),
} as unknown as FaceEmbedder;
const gallery = {
  match: async (queries: readonly Float32Array[]) =>
    queries.map((q) => ({ identity: PEOPLE[Math.round(q[0]! / 40)]!, distance: 0.1 })),
} as unknown as Gallery;

function pipeline(replyQueues: readonly string[] = [REPLY_A, REPLY_B]) {
  const transport = new InMemoryQueueTransport();
  const detect = createDetectionHandler({
    detector,
    crop: CROP,
    transport,
    requestQueue: REQUESTS,
    responseQueue: RESPONSES,
    replyQueues,
  });
  const recognise = createRecognitionRecordHandler({
    embedder,
    gallery,
    transport,
    responseQueue: RESPONSES,
    replyQueues,
    prepare: (crop) => crop,
  });
  const post = (body: Record<string, unknown>) =>
    detect({ body: JSON.stringify(body), requestContext: { http: { method: 'POST' } } });
  /** One recognition invocation on up to `max` records of the request queue, as the SQS event source makes. */
  const recogniseBatch = async (max = 10) => {
    const records = await transport.receive(REQUESTS, { maxMessages: max, waitTimeSeconds: 0 });
    if (!records.length) return { records: 0, failedIds: [] as string[] };
    const { failedIds } = await recognise(records);
    await transport.acknowledge(
      REQUESTS,
      records.filter((r) => !failedIds.includes(r.id)),
    );
    return { records: records.length, failedIds };
  };
  /** Everything on a queue, acknowledged. */
  const drain = async (queue: string): Promise<ResponseMessage[]> => {
    const all: ResponseMessage[] = [];
    for (;;) {
      const got = await transport.receive(queue, { maxMessages: 10, waitTimeSeconds: 0 });
      if (!got.length) return all;
      await transport.acknowledge(queue, got);
      all.push(...got.map((m) => responseMessageSchema.parse(JSON.parse(m.body))));
    }
  };
  return { transport, post, recogniseBatch, drain };
}

/** A request body of a one-face frame. */
const oneFace = async (requestId: string) => ({
  content: await frame(1, 1),
  request_id: requestId,
  filename: 'f.jpg',
});

const key = (a: Pick<ResponseMessage, 'request_id' | 'face_index'>) => `${a.request_id}:${a.face_index}`;

describe('handlers: answers routed to the reply queue each request names', () => {
  it('gives two interleaved clients exactly their own answers, and a third without reply_to the response queue', async () => {
    const { post, recogniseBatch, drain } = pipeline();
    // 3 clients × 8 frames, interleaved A, B, C, A, B, C…; 0 to 3 faces each (no-face frames included).
    const clients = [
      { name: 'a', replyTo: REPLY_A as string | undefined },
      { name: 'b', replyTo: REPLY_B as string | undefined },
      { name: 'c', replyTo: undefined },
    ];
    const expected = new Map<string, string[]>(clients.map((c) => [c.name, []]));
    const posts: Promise<{ statusCode: number }>[] = [];
    for (let i = 0; i < 8; i++) {
      for (const [n, c] of clients.entries()) {
        const faces = (i + n) % 4;
        const person = (i + 2 * n) % PEOPLE.length;
        const requestId = `${c.name}-${i}`;
        for (let f = 0; f < Math.max(faces, 1); f++)
          expected
            .get(c.name)!
            .push(`${requestId}:${faces ? f : null}=${faces ? PEOPLE[person] : 'no face'}`);
        posts.push(
          post({
            content: await frame(person, faces),
            request_id: requestId,
            filename: `${requestId}.jpg`,
            ...(c.replyTo ? { reply_to: c.replyTo } : {}),
          }),
        );
      }
    }
    expect((await Promise.all(posts)).map((r) => r.statusCode)).toEqual(posts.map(() => 200));
    // Recognition batches mix the clients' faces (10 records at a time, in queue order).
    let batches = 0;
    for (;;) {
      const { records, failedIds } = await recogniseBatch();
      if (!records) break;
      expect(failedIds).toEqual([]);
      batches++;
    }
    expect(batches).toBeGreaterThan(1);

    const seen = (answers: ResponseMessage[]) => answers.map((a) => `${key(a)}=${a.result}`).sort();
    expect(seen(await drain(REPLY_A))).toEqual(expected.get('a')!.sort());
    expect(seen(await drain(REPLY_B))).toEqual(expected.get('b')!.sort());
    // No reply_to: the seed's single response queue, unchanged.
    expect(seen(await drain(RESPONSES))).toEqual(expected.get('c')!.sort());
  });

  it('carries reply_to on every face message only when the request named one', async () => {
    const { transport, post } = pipeline();
    const content = await frame(1, 2);
    await post({ content, request_id: 'with', filename: 'f.jpg', reply_to: REPLY_B });
    await post({ content, request_id: 'without', filename: 'f.jpg' });
    const messages = (await transport.receive(REQUESTS, { maxMessages: 10, waitTimeSeconds: 0 })).map(
      (m) => faceMessageSchema.parse(JSON.parse(m.body)) as FaceMessage,
    );
    expect(messages.map((m) => [m.request_id, m.reply_to]).sort()).toEqual([
      ['with', REPLY_B],
      ['with', REPLY_B],
      ['without', undefined],
      ['without', undefined],
    ]);
    expect(messages.filter((m) => m.request_id === 'without').every((m) => !('reply_to' in m))).toBe(true);
  });

  it('answers 400 to a reply_to outside the allow-list, without echoing it or queueing anything', async () => {
    const outside = 'https://sqs.eu-west-1.amazonaws.com/999999999999/someone-elses-queue';
    for (const [allowed, message] of [
      [
        [REPLY_A],
        /reply_to is not one of the 1 reply queues this deployment allows \(FACEREC_REPLY_QUEUES\)/,
      ],
      [[], /reply_to is not allowed: this deployment has no reply queues/],
    ] as const) {
      const { transport, post } = pipeline(allowed);
      const res = await post({ ...(await oneFace('r1')), reply_to: outside });
      expect(res.statusCode).toBe(400);
      const body = JSON.parse(res.body) as { error: string; request_id: string };
      expect(body).toEqual({ error: expect.stringMatching(message), request_id: 'r1' });
      expect(res.body).not.toContain('999999999999');
      for (const q of [REQUESTS, RESPONSES, REPLY_A, outside])
        expect(transport.depth(q) + transport.inFlight(q)).toBe(0);
    }
    // A huge value is refused by the schema, and its text is not reflected either.
    const { post } = pipeline();
    const huge = `https://x/${'q'.repeat(50_000)}`;
    const res = await post({ ...(await oneFace('r2')), reply_to: huge });
    expect(res.statusCode).toBe(400);
    expect(res.body).toMatch(/reply_to/);
    expect(res.body.length).toBeLessThan(500);
  });

  it('refuses, in recognition, a face message whose reply_to is not allowed (the record fails)', async () => {
    const { transport, recogniseBatch } = pipeline([REPLY_A]);
    const face: FaceMessage = {
      request_id: 'r1',
      frame_id: '11111111-2222-4333-8444-555555555555',
      filename: 'f.jpg',
      face_index: 0,
      face_count: 1,
      box: [0, 0, 8, 8],
      score: 0.99,
      crop: Buffer.from(await encodeJpeg(solid(16, 16, 40))).toString('base64'),
      reply_to: REPLY_B,
    };
    await transport.publish(REQUESTS, [{ id: 'face', body: JSON.stringify(face) }]);
    const { failedIds } = await recogniseBatch();
    expect(failedIds).toEqual(['face']);
    for (const q of [RESPONSES, REPLY_A, REPLY_B]) expect(transport.depth(q)).toBe(0);
  });

  it('reads FACEREC_REPLY_QUEUES as a comma-separated list of queue URLs', () => {
    const env = { FACEREC_REQUEST_QUEUE_URL: REQUESTS, FACEREC_RESPONSE_QUEUE_URL: RESPONSES };
    expect(loadConfig(env).replyQueues).toEqual([]);
    expect(loadConfig({ ...env, FACEREC_REPLY_QUEUES: ` ${REPLY_A}, ${REPLY_B},` }).replyQueues).toEqual([
      REPLY_A,
      REPLY_B,
    ]);
    expect(() => loadConfig({ ...env, FACEREC_REPLY_QUEUES: 'reply-a' })).toThrow(/FACEREC_REPLY_QUEUES/);
  });
});

describe('workload client: two clients at once on one deployment, each with its reply queue', () => {
  it('answers 100 % of each client, with no duplicates and every face named right', async () => {
    const { transport, post, recogniseBatch } = pipeline();
    const frames: WorkloadFrame[] = await Promise.all(
      [0, 1, 2, 3].map(async (faces, i) => ({
        file: `frame-${i}.jpg`,
        filename: `frame-${i}.jpg`,
        expected: faces ? PEOPLE[i + 1] : undefined,
        content: await frame(i + 1, faces),
      })),
    );
    // The recognition function: two concurrent consumers of the request queue, until both clients are done.
    let done = false;
    const consumer = async () => {
      while (!done) {
        const { records } = await recogniseBatch(5);
        if (!records) await new Promise((r) => setTimeout(r, 5));
      }
    };
    const consumers = [consumer(), consumer()];
    const client = (replyTo: string) =>
      runWorkload({
        url: 'https://function-url.example',
        frames,
        responses: queueResponses(transport, replyTo),
        replyTo,
        requests: 60,
        concurrency: 6,
        timeoutMs: 20_000,
        send: async (_url, body) =>
          post(JSON.parse(body)).then((r) => ({ status: r.statusCode, body: r.body })),
      });
    const [a, b] = await Promise.all([client(REPLY_A), client(REPLY_B)]);
    done = true;
    await Promise.all(consumers);
    for (const report of [a, b]) {
      expect(report).toMatchObject({
        requests: 60,
        answered: 60,
        unanswered: [],
        rejected: 0,
        duplicates: 0,
      });
      // 45 frames of 1–3 faces (15 each): 90 faces, each named as its frame's person.
      expect(report.accuracy).toEqual({ faces: 90, correct: 90, noFace: 0 });
    }
    for (const q of [RESPONSES, REPLY_A, REPLY_B, REQUESTS])
      expect(transport.depth(q) + transport.inFlight(q)).toBe(0);
  });

  it("leaves another client's answers on a shared queue instead of deleting them", async () => {
    const transport = new InMemoryQueueTransport();
    const answer = (request_id: string): ResponseMessage => ({
      request_id,
      frame_id: '11111111-2222-4333-8444-555555555555',
      filename: 'f.jpg',
      face_index: 0,
      face_count: 1,
      result: 'amy',
      distance: 0.1,
      box: [0, 0, 8, 8],
    });
    await transport.publish(
      RESPONSES,
      ['mine-1', 'theirs-1', 'mine-2', 'theirs-2'].map((id) => ({ id, body: JSON.stringify(answer(id)) })),
    );
    const got = await queueResponses(transport, RESPONSES).poll(new AbortController().signal, 'mine-');
    expect(got.map((a) => a.request_id).sort()).toEqual(['mine-1', 'mine-2']);
    // The other client's two are not deleted: held until their visibility timeout, then visible again.
    expect(transport.depth(RESPONSES) + transport.inFlight(RESPONSES)).toBe(2);
  });
});
