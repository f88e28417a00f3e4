import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import type { FunctionUrlEvent, FunctionUrlResult } from '@facerec/lambda-runtime';
import { afterAll, expect, it, vi } from 'vitest';
import { RESTART_INTERVAL_MS } from '../src/lambda/entry.js';
import { pipelineParts } from './fixtures.js';

/**
 * The detection Lambda entry module as Lambda loads it: configuration from the environment, models and
 * warm-up during the module's (init phase's) top-level await, then the handler. Only requests that need no
 * queue are sent (there is no SQS here).
 */
/** What the process writes to stdout and stderr (Powertools writes errors to stderr) until `restore`. */
function captureOutput(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    // Node's own process warnings (`(node:1234) Warning: …`, e.g. the AWS SDK's Node-version notice) are printed
    // on a later tick and can land in another test's capture: they are not the entry's output.
    if (!/^\(node:\d+\) /.test(String(chunk))) lines.push(String(chunk));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(capture),
    vi.spyOn(process.stderr, 'write').mockImplementation(capture),
  ];
  return {
    lines,
    restore: () => {
      for (const spy of spies) spy.mockRestore();
    },
  };
}

interface EmfLine {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: object[] }[] };
  [key: string]: unknown;
}

/** The embedded-metric-format lines among the output lines. */
function emfLines(lines: readonly string[]): EmfLine[] {
  return lines
    .map((l) => JSON.parse(l) as Partial<EmfLine>)
    .filter((l): l is EmfLine => l._aws !== undefined);
}

describeWithSharedData('detection Lambda entry', ['models/upstream/pnet.pt'], () => {
  const temps: string[] = [];
  afterAll(async () => {
    vi.unstubAllEnvs();
    await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
  });

  it('loads and warms up during init, then answers with the handler', async () => {
    const cache = await mkdtemp(path.join(os.tmpdir(), 'facerec-entry-'));
    temps.push(cache);
    const env = {
      FACEREC_CACHE_DIR: cache,
      FACEREC_MODELS_MIRROR: sharedPath('models', 'upstream'),
      FACEREC_REQUEST_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/requests',
      FACEREC_RESPONSE_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/responses',
      FACEREC_WARMUP: '640x480',
      AWS_REGION: 'eu-west-1',
      AWS_LAMBDA_FUNCTION_NAME: 'facerec-detection',
      POWERTOOLS_LOG_LEVEL: 'INFO',
    };
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    let handler: (event: FunctionUrlEvent) => Promise<FunctionUrlResult>;
    try {
      ({ handler } = await import('../src/lambda/detection.js'));
    } finally {
      spy.mockRestore();
    }
    // The import resolved only after the top-level await: the warm-up is already logged.
    const warmed = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === 'detector warmed up');
    expect(warmed).toMatchObject({ width: 640, height: 480 });
    expect(typeof warmed?.ms).toBe('number');

    const { lines: invocationLines, restore } = captureOutput();
    let response: FunctionUrlResult;
    let get: FunctionUrlResult;
    try {
      response = await handler({
        body: '{"content": 42}',
        isBase64Encoded: false,
        requestContext: { http: { method: 'POST' } },
      });
      get = await handler({
        body: '',
        isBase64Encoded: false,
        requestContext: { http: { method: 'GET' } },
      });
    } finally {
      restore();
    }
    expect(response.statusCode).toBe(400);
    expect(get.statusCode).toBe(405);
    // Each invocation publishes its metrics: one refused frame each, as embedded metric format.
    const published = emfLines(invocationLines);
    expect(published).toHaveLength(2);
    for (const emf of published) {
      expect(emf._aws.CloudWatchMetrics).toEqual([
        {
          Namespace: 'facerec',
          Dimensions: [['service', 'FunctionName']],
          Metrics: [{ Name: 'FramesRefused', Unit: 'Count' }],
        },
      ]);
      expect(emf).toMatchObject({
        service: 'detection',
        FunctionName: 'facerec-detection',
        FramesRefused: 1,
      });
    }
  }, 60_000);

  it('answers 503 in the API shape, and logs why, when the models could not load at init', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'facerec-entry-'));
    temps.push(work);
    // A model cache that is a file: the model store cannot write there, whatever the network.
    const notAFolder = path.join(work, 'cache');
    await writeFile(notAFolder, 'not a folder');
    vi.stubEnv('FACEREC_CACHE_DIR', notAFolder);
    vi.resetModules();
    const { lines, restore } = captureOutput();
    let response: FunctionUrlResult;
    try {
      const { handler } = await import('../src/lambda/detection.js');
      response = await handler(
        { body: '{}', isBase64Encoded: false, requestContext: { http: { method: 'POST' } } },
        {
          functionName: 'facerec-detection',
          functionVersion: '$LATEST',
          invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:facerec-detection',
          memoryLimitInMB: '2048',
          awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
        },
      );
    } finally {
      restore();
    }
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body)).toEqual({
      error: 'the detection function failed to start; its logs say why',
      request_id: null,
    });
    const logged = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === 'the detection function failed to start');
    // With the invocation's context, to tie the line to Lambda's REPORT line.
    expect(logged).toMatchObject({
      level: 'ERROR',
      error: expect.stringContaining('ModelUnavailableError'),
      function_name: 'facerec-detection',
      function_request_id: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    });
  }, 60_000);

  it('a bad environment variable: both entries load, log it as one structured line naming it, and refuse', async () => {
    vi.stubEnv('FACEREC_THRESHOLD', 'abc');
    vi.resetModules();
    const { lines, restore } = captureOutput();
    let detected: FunctionUrlResult;
    let recognised: unknown;
    let malformed: unknown;
    try {
      const detection = await import('../src/lambda/detection.js');
      detected = await detection.handler({
        body: '{}',
        isBase64Encoded: false,
        requestContext: { http: { method: 'POST' } },
      });
      const recognition = await import('../src/lambda/recognition.js');
      recognised = await recognition.handler({
        Records: [{ messageId: 'm1', body: '{}', attributes: { ApproximateReceiveCount: '1' } }],
      } as never);
      // A console test event without Records: nothing to hand back, and no TypeError out of the handler.
      malformed = await recognition.handler({} as never);
    } finally {
      restore();
    }
    expect(malformed).toEqual({ batchItemFailures: [] });
    expect(detected.statusCode).toBe(503);
    expect(recognised).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }] });
    // What a failed start refused is counted: the frame failed, the record handed back.
    expect(emfLines(lines)).toEqual([
      expect.objectContaining({ service: 'detection', FramesFailed: 1 }),
      expect.objectContaining({ service: 'recognition', FacesFailed: 1 }),
      expect.objectContaining({ service: 'recognition', FacesFailed: 0 }),
    ]);
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const which of ['detection', 'recognition']) {
      expect(logged).toContainEqual(
        expect.objectContaining({
          level: 'ERROR',
          message: `the ${which} function failed to start`,
          error: expect.stringContaining('FACEREC_THRESHOLD'),
        }),
      );
    }
    expect(lines.join('')).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);

  it('a started recognition function hands back the records of an event that is no SQS batch, in one line', async () => {
    // A faceapi-resnet gallery (its weights install offline) and nothing else wrong: the function starts.
    const work = await mkdtemp(path.join(os.tmpdir(), 'facerec-entry-'));
    temps.push(work);
    const gallery = path.join(work, 'gallery.json');
    await writeFile(gallery, (await pipelineParts()).gallery.toText());
    vi.stubEnv('FACEREC_THRESHOLD', '');
    vi.stubEnv('FACEREC_CACHE_DIR', path.join(work, 'cache'));
    vi.stubEnv('FACEREC_EMBEDDER', 'faceapi-resnet');
    vi.stubEnv('FACEREC_GALLERY', gallery);
    vi.resetModules();
    const { lines, restore } = captureOutput();
    const answers: unknown[] = [];
    try {
      const recognition = await import('../src/lambda/recognition.js');
      // A record without a body beside one with: the event is refused whole, each named record handed back.
      answers.push(
        await recognition.handler({
          Records: [{ messageId: 'm1', body: '{}' }, { messageId: 'm2' }, null],
        } as never),
      );
      answers.push(await recognition.handler({} as never));
    } finally {
      restore();
    }
    expect(answers).toEqual([
      { batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }] },
      { batchItemFailures: [] },
    ]);
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      logged.filter((l) => l.message === 'the event is no SQS batch; its records are handed back'),
    ).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        error: expect.stringMatching(/^not an SQS event: record 1 has no/),
      }),
      expect.objectContaining({ level: 'ERROR', error: 'not an SQS event: it has no Records array' }),
    ]);
    expect(logged.some((l) => String(l.message).includes('failed to start'))).toBe(false);
    expect(lines.join('')).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('createRecognitionLambda: the stock function against a registry of your own, a late gallery picked up', async () => {
    // Imported after the other tests' module resets, so that the registry is of the framework the provider
    // loaded by the function checks it against (the same module instance).
    vi.resetModules();
    const { defineEmbedder, MODELS } = await import('@facerec/framework');
    const { createRecognitionLambda, loadConfig } = await import('@facerec/lambda-runtime');
    const { createOnnxProvider } = await import('@facerec/provider-onnx');
    // An embedder only this registry knows (face-api's net under another id): the built-in registry refuses
    // FACEREC_EMBEDDER=my-faceapi; this one reads it, and the gallery of face-api's net matches it.
    const registry = MODELS.with(
      defineEmbedder({
        ...MODELS.embedder('faceapi-resnet'),
        id: 'my-faceapi',
        load: () => createOnnxProvider().embedder('faceapi-resnet'),
      }),
    );
    const env = {
      FACEREC_REQUEST_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/requests',
      FACEREC_RESPONSE_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/responses',
      AWS_REGION: 'eu-west-1',
    };
    expect(() => loadConfig({ ...env, FACEREC_EMBEDDER: 'my-faceapi' })).toThrow(/my-faceapi/);
    expect(loadConfig({ ...env, FACEREC_EMBEDDER: 'my-faceapi' }, registry).embedder.description.id).toBe(
      'my-faceapi',
    );
    const work = await mkdtemp(path.join(os.tmpdir(), 'facerec-entry-'));
    temps.push(work);
    const gallery = path.join(work, 'gallery.json');
    vi.stubEnv('FACEREC_THRESHOLD', '');
    vi.stubEnv('FACEREC_CACHE_DIR', path.join(work, 'cache'));
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    vi.stubEnv('FACEREC_MODELS_MIRROR', sharedPath('models', 'upstream'));
    vi.stubEnv('FACEREC_EMBEDDER', 'my-faceapi');
    vi.stubEnv('FACEREC_GALLERY', gallery); // not there yet: uploaded after the start
    const records = { Records: [{ messageId: 'm1', body: 'not json', attributes: {} }] } as never;
    const { lines, restore } = captureOutput();
    let clock = 0;
    const answers: unknown[] = [];
    try {
      const handler = await createRecognitionLambda({ registry });
      answers.push(await handler(records));
      await writeFile(gallery, (await pipelineParts()).gallery.toText());
      clock = Date.now(); // after the start
      vi.spyOn(Date, 'now').mockImplementation(() => clock);
      answers.push(await handler(records)); // within 10 s of the failed start: not tried again yet
      clock += RESTART_INTERVAL_MS;
      answers.push(await handler(records)); // started: the record fails for its own body
    } finally {
      vi.mocked(Date.now).mockRestore();
      restore();
    }
    const handedBack = { batchItemFailures: [{ itemIdentifier: 'm1' }] };
    expect(answers).toEqual([handedBack, handedBack, handedBack]);
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const startFailures = logged.filter((l) => l.message === 'the recognition function failed to start');
    expect(startFailures).toEqual([
      expect.objectContaining({ error: expect.stringMatching(/^GalleryStoreNotFoundError: /) }),
      expect.objectContaining({ error: expect.stringMatching(/^GalleryStoreNotFoundError: /) }),
    ]);
    expect(logged).toContainEqual(
      expect.objectContaining({ message: 'the recognition function started', failed_starts_before: 1 }),
    );
    // Each invocation published its metrics: the records of the failed starts counted as failed.
    expect(emfLines(lines).slice(0, 2)).toEqual([
      expect.objectContaining({ service: 'recognition', FacesFailed: 1 }),
      expect.objectContaining({ service: 'recognition', FacesFailed: 1 }),
    ]);
    expect(lines.join('')).not.toMatch(/\n\s+at /);
  }, 60_000);
  // Last: it points the queue variables at in-memory queues.
  it('createDetectionLambda on an in-memory transport: a frame with faces answered, its faces queued, no SQS', async () => {
    const cache = await mkdtemp(path.join(os.tmpdir(), 'facerec-entry-'));
    temps.push(cache);
    const env = {
      FACEREC_CACHE_DIR: cache,
      FACEREC_MODELS_MIRROR: sharedPath('models', 'upstream'),
      FACEREC_REQUEST_QUEUE_URL: 'requests',
      FACEREC_RESPONSE_QUEUE_URL: 'responses',
      FACEREC_WARMUP: 'off',
      FACEREC_EMBEDDER: 'inception-resnet-v1',
      POWERTOOLS_METRICS_DISABLED: 'true',
    };
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    const { createDetectionLambda } = await import('@facerec/lambda-runtime');
    const { InMemoryQueueTransport } = await import('@facerec/transport-memory');
    const transport = new InMemoryQueueTransport();
    const { lines, restore } = captureOutput();
    let result: FunctionUrlResult;
    try {
      const handler = await createDetectionLambda({ transport });
      const content = (await readFile(sharedPath('faces', 'face-api.js', 'bbt3.jpg'))).toString('base64');
      result = await handler({
        body: JSON.stringify({ content, request_id: 'in-memory', filename: 'bbt3.jpg' }),
        isBase64Encoded: false,
        requestContext: { http: { method: 'POST' } },
      });
    } finally {
      restore();
    }
    expect(result.statusCode, lines.join('')).toBe(200);
    const queued = await transport.receive('requests', { maxMessages: 10, waitTimeSeconds: 0 });
    expect(queued).toHaveLength(5);
    await transport.close();
  }, 60_000);
});
