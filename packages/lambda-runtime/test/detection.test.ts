import { readFile } from 'node:fs/promises';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { decodeImage } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import {
  createDetectionHandler,
  createRecognitionRecordHandler,
  type FunctionUrlEvent,
  faceMessageSchema,
  type PipelineLogger,
  responseMessageSchema,
} from '@facerec/lambda-runtime';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { createSqsTransport } from '@facerec/transport-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { PIPELINE_DATA, pipelineParts } from './fixtures.js';

const post = (body: unknown, extra: Partial<FunctionUrlEvent> = {}): FunctionUrlEvent => ({
  body: typeof body === 'string' ? body : JSON.stringify(body),
  isBase64Encoded: false,
  requestContext: { http: { method: 'POST' } },
  ...extra,
});

function recordingLogger(): PipelineLogger & { entries: string[] } {
  const entries: string[] = [];
  const log = (level: string) => (message: string, extra?: Record<string, unknown>) => {
    entries.push(JSON.stringify({ level, message, ...extra }));
  };
  return { entries, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

describeWithSharedData('detection handler', PIPELINE_DATA, () => {
  let handler: ReturnType<typeof createDetectionHandler>;
  let transport: InMemoryQueueTransport;
  let logger: ReturnType<typeof recordingLogger>;
  let group: string;

  beforeAll(async () => {
    const { detector, embedder } = await pipelineParts();
    transport = new InMemoryQueueTransport();
    logger = recordingLogger();
    handler = createDetectionHandler({
      detector,
      crop: embedder.preprocessing.crop,
      transport,
      requestQueue: 'requests',
      responseQueue: 'responses',
      logger,
    });
    group = (await readFile(sharedPath('faces', 'face-api.js', 'bbt3.jpg'))).toString('base64');
  });

  const drain = async (queue: string) => {
    const all = [];
    for (;;) {
      const batch = await transport.receive(queue, { maxMessages: 10, waitTimeSeconds: 0 });
      if (batch.length === 0) return all;
      await transport.acknowledge(queue, batch);
      all.push(...batch.map((m) => JSON.parse(m.body) as unknown));
    }
  };

  it('sends one request-queue message per face, with a decodable crop', async () => {
    const result = await handler(post({ content: group, request_id: 'req-1', filename: 'bbt3.jpg' }));
    expect(result.statusCode).toBe(200);
    const answer = JSON.parse(result.body);
    expect(answer).toEqual({
      request_id: 'req-1',
      frame_id: expect.any(String),
      filename: 'bbt3.jpg',
      faces: 5,
      faces_found: 5,
    });
    const messages = (await drain('requests')).map((m) => faceMessageSchema.parse(m));
    expect(messages.map((m) => m.face_index).sort()).toEqual([0, 1, 2, 3, 4]);
    for (const m of messages) {
      expect(m).toMatchObject({
        request_id: 'req-1',
        frame_id: answer.frame_id,
        filename: 'bbt3.jpg',
        face_count: 5,
        // How the crop was cut, as recognition checks it: face-api's net's policy, from the registry.
        crop_policy: { size: { width: 150, height: 150 }, shape: 'eyes-mouth', margin: 0 },
      });
      const crop = await decodeImage(Buffer.from(m.crop, 'base64'));
      expect([crop.width, crop.height]).toEqual([150, 150]);
      expect(Buffer.byteLength(JSON.stringify(m))).toBeLessThan(64 * 1024);
    }
    expect(await drain('responses')).toEqual([]);
    // Logs carry the request id and timings, never the image.
    const entry = logger.entries.find((e) => e.includes('req-1') && e.includes('frame detected'))!;
    expect(JSON.parse(entry)).toMatchObject({ faces: 5, request_id: 'req-1' });
    for (const key of ['decode_ms', 'detect_ms', 'publish_ms'])
      expect(JSON.parse(entry)[key]).toBeTypeOf('number');
    for (const e of logger.entries) expect(e).not.toContain(group.slice(0, 64));
  });

  it('carries a filename with characters SQS refuses raw (U+FFFE, U+FFFF, controls) escaped, intact', async () => {
    const filename = 'odd\uFFFE\uFFFF\u0001\uD800.jpg';
    const white = (await readFile(sharedPath('faces', 'face-api.js', 'test', 'white.png'))).toString(
      'base64',
    );
    for (const content of [group, white]) {
      const result = await handler(post({ content, request_id: 'req-odd', filename }));
      expect(result.statusCode).toBe(200);
    }
    const sent = [...(await drain('requests')), ...(await drain('responses'))] as { filename: string }[];
    expect(sent.length).toBe(6);
    for (const message of sent) expect(message.filename).toBe(filename);
  });

  it('answers a frame without faces with exactly one "no face" response', async () => {
    const white = (await readFile(sharedPath('faces', 'face-api.js', 'test', 'white.png'))).toString(
      'base64',
    );
    const result = await handler(post({ content: white, request_id: 'req-2', filename: 'white.png' }));
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body).faces).toBe(0);
    expect(await drain('requests')).toEqual([]);
    const answers = (await drain('responses')).map((m) => responseMessageSchema.parse(m));
    expect(answers).toEqual([
      {
        request_id: 'req-2',
        frame_id: JSON.parse(result.body).frame_id,
        filename: 'white.png',
        face_index: null,
        face_count: 0,
        result: 'no face',
        distance: null,
        box: null,
      },
    ]);
  });

  it('says a "no face" answer it could not queue as that (503), not as faces', async () => {
    const { detector, embedder } = await pipelineParts();
    const closed = new InMemoryQueueTransport();
    await closed.close();
    const refusing = createDetectionHandler({
      detector,
      crop: embedder.preprocessing.crop,
      transport: closed,
      requestQueue: 'requests',
      responseQueue: 'responses',
      logger: recordingLogger(),
    });
    const white = (await readFile(sharedPath('faces', 'face-api.js', 'test', 'white.png'))).toString(
      'base64',
    );
    const result = await refusing(post({ content: white, request_id: 'req-none', filename: 'white.png' }));
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body)).toMatchObject({
      error: 'could not queue the "no face" answer; retry later',
      queued: 0,
    });
  });

  it('keeps two frames sent with one request_id apart: 5 + 1 faces, 6 answers, each tagged with its frame', async () => {
    const { embedder, gallery } = await pipelineParts();
    const amy = (await readFile(sharedPath('faces', 'face-api.js', 'bbt', 'amy', 'amy3.png'))).toString(
      'base64',
    );
    const five = JSON.parse(
      (await handler(post({ content: group, request_id: 'same', filename: 'bbt3.jpg' }))).body,
    );
    const one = JSON.parse(
      (await handler(post({ content: amy, request_id: 'same', filename: 'amy3.png' }))).body,
    );
    expect([five.faces, one.faces]).toEqual([5, 1]);
    expect(five.frame_id).not.toBe(one.frame_id);
    const recognition = createRecognitionRecordHandler({
      embedder,
      gallery,
      transport,
      responseQueue: 'responses',
    });
    for (;;) {
      const batch = await transport.receive('requests', { maxMessages: 10, waitTimeSeconds: 0 });
      if (!batch.length) break;
      expect((await recognition(batch)).failedIds).toEqual([]);
      await transport.acknowledge('requests', batch);
    }
    const answers = (await drain('responses')).map((m) => responseMessageSchema.parse(m));
    expect(answers).toHaveLength(6);
    expect(answers.every((a) => a.request_id === 'same')).toBe(true);
    const byFrame = (frame: string) => answers.filter((a) => a.frame_id === frame);
    expect(
      byFrame(five.frame_id)
        .map((a) => a.face_index)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4]);
    expect(byFrame(five.frame_id).every((a) => a.filename === 'bbt3.jpg' && a.face_count === 5)).toBe(true);
    expect(byFrame(one.frame_id)).toMatchObject([
      { face_index: 0, face_count: 1, filename: 'amy3.png', result: 'amy' },
    ]);
  });

  it('honours isBase64Encoded and maxFaces, and says how many faces it left out', async () => {
    const { detector, embedder } = await pipelineParts();
    const warned: Record<string, unknown>[] = [];
    const limited = createDetectionHandler({
      detector,
      crop: embedder.preprocessing.crop,
      transport,
      requestQueue: 'requests',
      responseQueue: 'responses',
      maxFaces: 2,
      logger: {
        debug() {},
        info() {},
        error() {},
        warn: (message, extra) => warned.push({ message, ...extra }),
      },
    });
    const body = Buffer.from(
      JSON.stringify({ content: group, request_id: 'req-3', filename: 'g.jpg' }),
    ).toString('base64');
    const result = await limited(post(body, { isBase64Encoded: true }));
    expect(result.statusCode).toBe(200);
    // The 200 gives all that were found; a warning (which quiet logs keep) says the smallest were left out.
    expect(JSON.parse(result.body)).toMatchObject({ faces: 2, faces_found: 5 });
    expect(warned).toEqual([
      expect.objectContaining({
        message: 'faces left out: more in the frame than the maximum sent on per frame',
        request_id: 'req-3',
        faces_found: 5,
        max_faces: 2,
      }),
    ]);
    expect((await drain('requests')).length).toBe(2);
  });

  describe('refuses malformed requests with the right status, as JSON', async () => {
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const jpeg = await readFile(sharedPath('faces', 'facenet-pytorch', 'multiface.jpg'));
    const hugePng = Buffer.from(png);
    hugePng.writeUInt32BE(20000, 16);
    hugePng.writeUInt32BE(20000, 20);
    const ok = { request_id: 'bad-1', filename: 'x.png' };
    const cases: [string, FunctionUrlEvent, number, string | null][] = [
      ['empty body', post(''), 400, null],
      ['not JSON', post('{"content": '), 400, null],
      ['missing content', post({ request_id: 'bad-1', filename: 'x' }), 400, 'bad-1'],
      ['unknown field', post({ ...ok, content: png.toString('base64'), extra: 1 }), 400, 'bad-1'],
      ['bad request_id', post({ ...ok, request_id: 'a b/c', content: png.toString('base64') }), 400, null],
      ['content not base64', post({ ...ok, content: '!!!not base64!!!' }), 400, 'bad-1'],
      [
        'GET',
        post({ ...ok, content: png.toString('base64') }, { requestContext: { http: { method: 'GET' } } }),
        405,
        null,
      ],
      ['body too large', post({ ...ok, content: 'A'.repeat(7 * 1024 * 1024) }), 413, null],
      ['image over the pixel limit', post({ ...ok, content: hugePng.toString('base64') }), 413, 'bad-1'],
      [
        'SVG',
        post({ ...ok, content: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>').toString('base64') }),
        415,
        'bad-1',
      ],
      [
        'GIF',
        post({ ...ok, content: Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;').toString('base64') }),
        415,
        'bad-1',
      ],
      [
        'truncated JPEG',
        post({ ...ok, content: jpeg.subarray(0, jpeg.length >> 1).toString('base64') }),
        422,
        'bad-1',
      ],
      [
        'random bytes',
        post({ ...ok, content: Buffer.from('hello, not an image').toString('base64') }),
        422,
        'bad-1',
      ],
    ];
    it('counts base64 padding: an image of exactly the byte limit is taken, one byte over is 413', async () => {
      let image = png;
      for (let side = 9; image.length % 3 === 0; side++) {
        image = await sharp({ create: { width: side, height: side, channels: 3, background: '#808080' } })
          .png()
          .toBuffer();
      }
      const { detector, embedder } = await pipelineParts();
      const limited = (maxBytes: number) =>
        createDetectionHandler({
          detector,
          crop: embedder.preprocessing.crop,
          transport,
          requestQueue: 'requests',
          responseQueue: 'responses',
          decodeLimits: { maxBytes, maxPixels: 1_000_000 },
        });
      const event = post({ ...ok, content: image.toString('base64') });
      expect((await limited(image.length)(event)).statusCode).toBe(200);
      const over = await limited(image.length - 1)(event);
      expect(over.statusCode).toBe(413);
      expect(JSON.parse(over.body).error).toContain(
        `${image.length} bytes exceeds the limit of ${image.length - 1}`,
      );
      // Which limit, as a field (a Lambda's client gets no advice on raising it: the limit is the deployment's).
      expect(JSON.parse(over.body).limit).toBe('bytes');
      expect(JSON.parse(over.body).error).not.toContain('facerec serve');
      // Whitespace anywhere (a space after every character, a line break every 76) is not counted, nor copied away.
      const spaced = post({
        ...ok,
        content: image
          .toString('base64')
          .split('')
          .join(' ')
          .replace(/(.{76})/g, '$1\r\n'),
      });
      expect((await limited(image.length)(spaced)).statusCode).toBe(200);
      expect((await limited(image.length - 1)(spaced)).statusCode).toBe(413);
      await drain('responses');
    });

    it.each(cases)('%s → %d', async (_name, event, status, requestId) => {
      const result = await handler(event);
      expect(result.statusCode).toBe(status);
      expect(result.headers['content-type']).toBe('application/json');
      const body = JSON.parse(result.body);
      expect(body.error).toEqual(expect.any(String));
      expect(body.request_id).toBe(requestId);
    });
  });

  it("says the usual slips in content: a data: URL, Python's str() of bytes", async () => {
    const b64 = Buffer.from('not an image, but base64').toString('base64');
    const error = async (content: string) =>
      JSON.parse((await handler(post({ request_id: 'bad-3', filename: 'x.png', content }))).body).error;
    expect(await error(`data:image/png;base64,${b64}`)).toBe(
      'content is a data: URL, not base64: send only what follows its comma',
    );
    expect(await error(`b'${b64}'`)).toMatch(
      /^content is not valid base64: it looks like Python's str\(\) of bytes/,
    );
    expect(await error('!!!')).toBe('content is not valid base64');
  });

  it('names what is wrong with a request without repeating its unknown fields back', async () => {
    const key = `<script>${'x'.repeat(2000)}`;
    const result = await handler(post({ request_id: 'bad-2', filename: 'x.png', [key]: 1, other: 2 }));
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toEqual({
      error:
        'invalid request: content: Invalid input: expected string, received undefined; 2 unknown fields; ' +
        'allowed: content, request_id, filename, reply_to',
      request_id: 'bad-2',
    });
    expect(result.body).not.toContain('script');
  });

  it('retries entries SQS reports as failed, and answers 503 when they keep failing', async () => {
    const { detector, embedder } = await pipelineParts();
    const sqs = mockClient(SQSClient);
    const client = new SQSClient({ region: 'us-east-1' });
    const transport = createSqsTransport({ client, sleep: async () => undefined });
    const handler = createDetectionHandler({
      detector,
      crop: embedder.preprocessing.crop,
      transport,
      requestQueue: 'https://q/requests',
      responseQueue: 'https://q/responses',
    });
    const request = post({ content: group, request_id: 'req-sqs', filename: 'bbt3.jpg' });

    // First call: SQS accepts every entry but the second; later calls accept everything.
    let call = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => {
      call++;
      const failedId = call === 1 ? input.Entries[1]!.Id : undefined;
      return {
        Successful: input.Entries.filter((e) => e.Id !== failedId).map((e) => ({
          Id: e.Id,
          MessageId: `x-${e.Id}`,
        })),
        Failed: failedId
          ? [{ Id: failedId, Code: 'InternalError', SenderFault: false, Message: 'try again' }]
          : [],
      };
    });
    const ok = await handler(request);
    expect(ok.statusCode).toBe(200);
    const calls = sqs.commandCalls(SendMessageBatchCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.args[0].input.Entries).toHaveLength(1);

    sqs.reset();
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.slice(1).map((e) => ({ Id: e.Id, MessageId: `x-${e.Id}` })),
      Failed: [{ Id: input.Entries[0]!.Id, Code: 'InternalError', SenderFault: false, Message: 'down' }],
    }));
    const failed = await handler(request);
    expect(failed.statusCode).toBe(503);
    // Four of the five faces went out (the first entry kept failing): the 503 says so, and names their frame.
    const body = JSON.parse(failed.body);
    expect(body).toMatchObject({ request_id: 'req-sqs', frame_id: expect.any(String), queued: 4 });
    expect(body.error).toContain('queued 4 of 5 faces before the queue refused the rest');
    const sentIds = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((c) => c.args[0].input.Entries!.map((e) => JSON.parse(e.MessageBody!).frame_id as string));
    expect(new Set(sentIds)).toEqual(new Set([body.frame_id]));
    sqs.restore();
  });

  it("answers 503 before the invocation's deadline when SQS never answers (it does not wait out the retries)", async () => {
    const { detector, embedder } = await pipelineParts();
    const sqs = mockClient(SQSClient);
    // A connection that hangs: no answer, ever (the real client's request timeout would retry it 5 times).
    sqs.on(SendMessageBatchCommand).callsFake(() => new Promise(() => undefined));
    const logged = recordingLogger();
    const handler = createDetectionHandler({
      detector,
      crop: embedder.preprocessing.crop,
      transport: createSqsTransport({ client: new SQSClient({ region: 'us-east-1' }) }),
      requestQueue: 'https://q/requests',
      responseQueue: 'https://q/responses',
      logger: logged,
    });
    const started = Date.now();
    const deadline = started + 5000;
    const result = await handler(post({ content: group, request_id: 'req-late', filename: 'bbt3.jpg' }), {
      deadline,
    });
    // One second is kept to log and answer.
    expect(Date.now()).toBeLessThan(deadline - 500);
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body)).toMatchObject({
      error: 'could not queue the faces; retry later',
      request_id: 'req-late',
      queued: 0,
    });
    expect(logged.entries.join('\n')).toMatch(/publishing stopped: the invocation's deadline/);
    sqs.restore();
  });
});
