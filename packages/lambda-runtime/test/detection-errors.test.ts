import type { Logger } from '@aws-lambda-powertools/logger';
import { encodeJpeg, FACENET_PREPROCESSING, type GalleryStoreLogger } from '@facerec/framework';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { createDetectionHandler } from '../src/detection.js';
import type { PipelineLogger } from '../src/logger.js';
import { requestJsonIssue } from '../src/messages.js';

it('takes a Powertools Logger as it is, wherever a logger is asked for (checked by the type-check)', () => {
  expectTypeOf<Logger>().toExtend<PipelineLogger>();
  expectTypeOf<Logger>().toExtend<GalleryStoreLogger>();
  expectTypeOf<Console>().toExtend<GalleryStoreLogger>();
});

/** A detection handler that finds no face and queues nothing: only its refusals are looked at. */
const handlerWith = (logger?: PipelineLogger) =>
  createDetectionHandler({
    detector: { detectFaces: async () => [] },
    crop: FACENET_PREPROCESSING.crop,
    transport: new InMemoryQueueTransport({ queues: {} }),
    requestQueue: 'q',
    responseQueue: 'r',
    ...(logger ? { logger } : {}),
  });

describe('detection handler: body encoding and method', () => {
  it('says a body marked base64 that is not base64 is that, and takes only true as the mark', async () => {
    const handler = handlerWith();
    const json = JSON.stringify({ content: 'aGk=', request_id: 'r1', filename: 'x.png' });
    const marked = await handler({
      body: json,
      isBase64Encoded: true,
      requestContext: { http: { method: 'POST' } },
    });
    expect(marked.statusCode).toBe(400);
    expect(JSON.parse(marked.body).error).toMatch(
      /^the body is marked base64-encoded \(isBase64Encoded\) but is not base64/,
    );
    // A hand-made "false" (truthy) is not the mark: the JSON is read as it is (and refused for its image here).
    const text = await handler({
      body: json,
      isBase64Encoded: 'false' as never,
      requestContext: { http: { method: 'POST' } },
    });
    expect(JSON.parse(text.body).error).not.toMatch(/base64-encoded|nests deeper/);
    expect(JSON.parse(text.body).request_id).toBe('r1');
  });

  it('names a method only when it is a method name (nothing else is reflected)', async () => {
    const handler = handlerWith();
    const get = await handler({ body: '', requestContext: { http: { method: 'GET' } } });
    expect([get.statusCode, JSON.parse(get.body).error]).toEqual([
      405,
      'method GET not allowed; POST a JSON body',
    ]);
    const odd = await handler({ body: '', requestContext: { http: { method: '<script>x' } } });
    expect([odd.statusCode, JSON.parse(odd.body).error]).toEqual([
      405,
      'that method not allowed; POST a JSON body',
    ]);
  });
});

describe('detection handler: bounded errors', () => {
  it('answers a body with 50,000 (or 60 long) unknown keys with a short 400, and logs a short line', async () => {
    const lines: string[] = [];
    const record = (level: string) => (message: string, extra?: Record<string, unknown>) =>
      lines.push(JSON.stringify({ level, message, ...extra }));
    const logger: PipelineLogger = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    };
    const handler = handlerWith(logger);
    const body = JSON.stringify(Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i])));
    expect(body.length).toBeGreaterThan(500_000);
    const result = await handler({ body, requestContext: { http: { method: 'POST' } } });
    expect(result.statusCode).toBe(400);
    expect(result.body.length).toBeLessThan(2500);
    // Refused by its shape, before it is parsed.
    expect(JSON.parse(result.body).error).toBe('body holds more than 64 values; POST a flat JSON object');
    // Within the shape limit, the schema names the unknown fields by count, not one by one.
    const some = JSON.stringify(
      Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${'x'.repeat(500)}${i}`, i])),
    );
    const fewer = await handler({ body: some, requestContext: { http: { method: 'POST' } } });
    expect([fewer.statusCode, JSON.parse(fewer.body).error]).toEqual([
      400,
      expect.stringMatching(/invalid request/),
    ]);
    expect(fewer.body.length).toBeLessThan(2500);
    for (const line of lines) expect(line.length).toBeLessThan(3000);
    // A hand-made event whose body is not a string: 400, without repeating it.
    for (const body of [12345, { content: 'x' }]) {
      const answer = await handler({ body: body as never, requestContext: { http: { method: 'POST' } } });
      expect(answer.statusCode).toBe(400);
      expect(JSON.parse(answer.body).error).toBe(`body must be a string, not ${typeof body}`);
    }
  });

  it('answers a body nested millions deep with a 400 without parsing it (JSON.parse took seconds)', async () => {
    const warned: Record<string, unknown>[] = [];
    const handler = handlerWith({
      debug() {},
      info() {},
      error() {},
      warn: (message, extra) => warned.push({ message, ...extra }),
    });
    const body = `{"request_id":"a","filename":"f","content":"x","x":${'['.repeat(3_000_000)}${']'.repeat(3_000_000)}}`;
    const result = await handler({
      body,
      requestContext: { http: { method: 'POST', sourceIp: '203.0.113.9' } },
    });
    // Logged with the client's address (the Function URL's sourceIp), to find who sends it.
    expect(warned).toEqual([
      expect.objectContaining({ message: 'request refused', status: 400, client: '203.0.113.9' }),
    ]);
    expect([result.statusCode, JSON.parse(result.body).error]).toEqual([
      400,
      'body nests deeper than 8 levels; POST a flat JSON object',
    ]);
  });
});

describe('requestJsonIssue', () => {
  const deeper = (text: string, depth: number) =>
    requestJsonIssue(text, { depth, values: 1000 })?.includes('deeper') ?? false;
  it('counts nesting outside strings only, escaped quotes included', () => {
    expect(deeper('{"a":[[[[[[[1]]]]]]]}', 8)).toBe(false);
    expect(deeper('{"a":[[[[[[[[1]]]]]]]]}', 8)).toBe(true);
    expect(deeper('{"a":[{"b":[1]}]}', 3)).toBe(true);
    // Brackets inside strings, after an escaped quote or an escaped backslash, do not count.
    expect(deeper(`{"a":"${'['.repeat(20)}"}`, 2)).toBe(false);
    expect(deeper(`{"a":"x\\"${'['.repeat(20)}"}`, 2)).toBe(false);
    expect(deeper(`{"a":"x\\\\","b":${'['.repeat(20)}}`, 2)).toBe(true);
    expect(deeper('{"unterminated', 2)).toBe(false);
  });
  it('refuses a body that is no JSON object by its first character (raw image bytes read as "64 values")', async () => {
    const notObject =
      'body is not a JSON object; POST a flat JSON object (an image goes in it base64-encoded), content-type application/json';
    // A JPEG's start, then what its entropy-coded data holds plenty of: commas and brackets.
    const jpeg = Buffer.concat([
      Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
      Buffer.from(',[{'.repeat(100), 'latin1'),
    ]);
    expect(requestJsonIssue(jpeg.toString('utf8'))).toBe(notObject);
    expect(requestJsonIssue('[{"content":"x"}]')).toBe(notObject);
    expect(requestJsonIssue('"text"')).toBe(notObject);
    // White space before the object is JSON; an empty or blank body is left to the parser.
    expect(requestJsonIssue(' \n\t{"a":1}')).toBeUndefined();
    expect(requestJsonIssue('  ')).toBeUndefined();
    // The handler answers a JPEG POSTed as it is (a Function URL marks image/jpeg base64-encoded) with it.
    const result = await handlerWith()({
      body: jpeg.toString('base64'),
      isBase64Encoded: true,
      headers: { 'content-type': 'image/jpeg' },
      requestContext: { http: { method: 'POST' } },
    });
    expect([result.statusCode, JSON.parse(result.body).error]).toEqual([400, notObject]);
  });
  it('refuses a shallow body of many values (2 million {} took JSON.parse over a second), not a frame', () => {
    const frame = JSON.stringify({ content: 'A'.repeat(100_000), request_id: 'r,1', filename: 'a,b[{.png' });
    expect(requestJsonIssue(frame)).toBeUndefined();
    expect(requestJsonIssue(`{"x":[${Array(65).fill('0').join(',')}]}`)).toBe(
      'body holds more than 64 values; POST a flat JSON object',
    );
    expect(requestJsonIssue(`{"x":[${'{},'.repeat(40)}{}]}`)).toBe(
      'body holds more than 64 values; POST a flat JSON object',
    );
  });
});

describe('detection handler: a face message over the queue limit', () => {
  it("answers 500 (the deployment's fault, not the frame's), counts a failed frame, logs the sizes", async () => {
    const lines: Record<string, unknown>[] = [];
    const record = (level: string) => (message: string, extra?: Record<string, unknown>) =>
      lines.push({ level, message, ...extra });
    const logger: PipelineLogger = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    };
    const noise = {
      width: 160,
      height: 160,
      data: new Uint8Array(160 * 160 * 3).map((_, i) => (i * 131) & 0xff),
    };
    const face = {
      box: [0, 0, 40, 40] as [number, number, number, number],
      score: 0.99,
      landmarks: [] as never,
    };
    const transport = new InMemoryQueueTransport({ queues: {}, maxMessageBytes: 4096 });
    const handler = createDetectionHandler({
      detector: {
        detectFaces: async () => [
          { faces: [face], crops: [{ detection: face, cropBox: face.box, image: noise }] },
        ],
      },
      crop: FACENET_PREPROCESSING.crop,
      transport,
      requestQueue: 'q',
      responseQueue: 'r',
      logger,
    });
    const content = Buffer.from(await encodeJpeg(noise)).toString('base64');
    const result = await handler({
      body: JSON.stringify({ content, request_id: 'big-crop', filename: 'f.jpg' }),
      requestContext: { http: { method: 'POST' } },
    });
    expect(result.statusCode).toBe(500);
    expect(JSON.parse(result.body)).toMatchObject({
      error: expect.stringMatching(
        /over the queue's size limit .*not a fault of the frame\); nothing was queued$/,
      ),
      request_id: 'big-crop',
    });
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
    expect(lines.find((l) => l.level === 'error')).toMatchObject({
      message: 'face message over the queue limit',
      request_id: 'big-crop',
      limit_bytes: 4096,
      size_bytes: expect.any(Number),
    });
    expect(transport.depth('q')).toBe(0);
  });
});
