import { readFile } from 'node:fs/promises';
import { type OutboundMessage, PIPELINE_METRICS, UNKNOWN_IDENTITY } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import {
  createDetectionHandler,
  createLambdaMetrics,
  createRecognitionHandler,
  type PipelineMetrics,
  recordsFromSqsEvent,
  responseMessageSchema,
  type SqsRecord,
} from '@facerec/lambda-runtime';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bbtFaceMessage, PIPELINE_DATA, pipelineParts } from './fixtures.js';

/** Metrics that keep every value added, by name. */
function recordingMetrics(): PipelineMetrics & { values: Map<string, { unit: string; values: number[] }> } {
  const values = new Map<string, { unit: string; values: number[] }>();
  return {
    values,
    add(name, unit, value) {
      const entry = values.get(name) ?? { unit, values: [] };
      expect(entry.unit).toBe(unit);
      entry.values.push(value);
      values.set(name, entry);
    },
  };
}

/** A queue that refuses every publish. */
class RefusingTransport extends InMemoryQueueTransport {
  override async publish(_queue: string, _messages: readonly OutboundMessage[]): Promise<void> {
    throw new Error('the queue is out of reach');
  }
}

describe('Lambda metrics (embedded metric format)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  const capture = () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    return lines;
  };

  it('publishes one line per invocation, every value kept, with the service and function dimensions', () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'stack-Recognition-1A2B');
    const metrics = createLambdaMetrics('recognition');
    const lines = capture();
    metrics.add('FacesAnswered', 'Count', 3);
    metrics.add('AnswerLatency', 'Milliseconds', 812);
    metrics.add('AnswerLatency', 'Milliseconds', 790);
    metrics.publish();
    metrics.publish(); // nothing stored since: no line, no Powertools warning
    vi.restoreAllMocks();
    expect(lines).toHaveLength(1);
    const emf = JSON.parse(lines[0]!);
    expect(emf._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: 'facerec',
        Dimensions: [['service', 'FunctionName']],
        Metrics: [
          { Name: 'FacesAnswered', Unit: 'Count' },
          { Name: 'AnswerLatency', Unit: 'Milliseconds' },
        ],
      },
    ]);
    expect(emf).toMatchObject({
      service: 'recognition',
      FunctionName: 'stack-Recognition-1A2B',
      FacesAnswered: 3,
      AnswerLatency: [812, 790],
    });
    expect(Math.abs(emf._aws.Timestamp - Date.now())).toBeLessThan(60_000);
  });

  it('POWERTOOLS_METRICS_DISABLED turns them off; POWERTOOLS_METRICS_NAMESPACE names another namespace', () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    const off = createLambdaMetrics('detection');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'staging-faces');
    const renamed = createLambdaMetrics('detection');
    const lines = capture();
    off.add('FramesAccepted', 'Count', 1);
    off.publish();
    renamed.add('FramesAccepted', 'Count', 1);
    renamed.publish();
    vi.restoreAllMocks();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)._aws.CloudWatchMetrics[0].Namespace).toBe('staging-faces');
  });

  it("reads SQS's SentTimestamp as the time a record was queued", () => {
    const records = recordsFromSqsEvent({
      Records: [
        { messageId: 'a', body: '{}', attributes: { SentTimestamp: '1764892800123' } },
        { messageId: 'b', body: '{}', attributes: { SentTimestamp: 'soon' } },
        { messageId: 'c', body: '{}' },
      ],
    });
    expect(records.map((r) => r.sentAt)).toEqual([1764892800123, undefined, undefined]);
  });
});

describeWithSharedData('pipeline metrics of the handlers', PIPELINE_DATA, () => {
  const M = PIPELINE_METRICS;
  const post = (body: unknown) => ({
    body: JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: { http: { method: 'POST' } },
  });

  it('detection counts frames by outcome, the faces it queued and each accepted frame latency', async () => {
    const { detector, embedder } = await pipelineParts();
    const metrics = recordingMetrics();
    const options = {
      detector,
      crop: embedder.preprocessing.crop,
      requestQueue: 'rq',
      responseQueue: 'sq',
      metrics,
    };
    const handler = createDetectionHandler({ ...options, transport: new InMemoryQueueTransport() });
    const group = (await readFile(sharedPath('faces', 'face-api.js', 'bbt3.jpg'))).toString('base64');
    const single = (await readFile(sharedPath('faces', 'face-api.js', 'bbt', 'amy', 'amy1.png'))).toString(
      'base64',
    );
    const answers = [
      await handler(post({ content: group, request_id: 'g', filename: 'g.jpg' })),
      await handler(post({ content: single, request_id: 'a', filename: 'a.png' })),
      await handler(post({ content: 'not base64!', request_id: 'b', filename: 'b.png' })),
    ];
    const refusing = createDetectionHandler({ ...options, transport: new RefusingTransport() });
    answers.push(await refusing(post({ content: single, request_id: 'c', filename: 'c.png' })));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 400, 503]);
    const faces = answers.slice(0, 2).map((a) => JSON.parse(a.body).faces as number);
    expect(faces[0]).toBeGreaterThan(1);
    expect(faces[1]).toBe(1);

    expect(metrics.values.get(M.detection.framesAccepted)).toEqual({ unit: 'Count', values: [1, 1] });
    expect(metrics.values.get(M.detection.facesDetected)).toEqual({ unit: 'Count', values: faces });
    expect(metrics.values.get(M.detection.framesRefused)).toEqual({ unit: 'Count', values: [1] });
    expect(metrics.values.get(M.detection.framesFailed)).toEqual({ unit: 'Count', values: [1] });
    const latency = metrics.values.get(M.detection.frameLatency)!;
    expect(latency.unit).toBe('Milliseconds');
    expect(latency.values).toHaveLength(2);
    for (const ms of latency.values) expect(ms).toBeGreaterThan(0);
  });

  it("recognition counts answered, unknown and failed faces, and each answer's latency from its SentTimestamp", async () => {
    const { embedder, gallery } = await pipelineParts();
    const metrics = recordingMetrics();
    const transport = new InMemoryQueueTransport();
    const handler = createRecognitionHandler({ embedder, gallery, transport, responseQueue: 'sq', metrics });
    const queuedAt = Date.now() - 1500;
    const records: SqsRecord[] = [];
    for (const identity of ['amy', 'penny', 'raj']) {
      records.push({
        messageId: identity,
        body: JSON.stringify(await bbtFaceMessage(identity, 3)),
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(queuedAt) },
      });
    }
    // Queued without a timestamp (a hand-made event): answered, but no latency to report.
    records.push({ messageId: 'howard', body: JSON.stringify(await bbtFaceMessage('howard', 3)) });
    records.push({ messageId: 'broken', body: '{"request_id": 1}' });
    const started = Date.now();
    const { batchItemFailures } = await handler({ Records: records });
    const elapsed = Date.now() - started;
    expect(batchItemFailures).toEqual([{ itemIdentifier: 'broken' }]);
    const sent = await transport.receive('sq', { maxMessages: 10, waitTimeSeconds: 0 });
    const results = sent.map((m) => responseMessageSchema.parse(JSON.parse(m.body)).result);
    expect(results).toHaveLength(4);

    expect(metrics.values.get(M.recognition.facesAnswered)).toEqual({ unit: 'Count', values: [4] });
    expect(metrics.values.get(M.recognition.facesUnknown)).toEqual({
      unit: 'Count',
      values: [results.filter((r) => r === UNKNOWN_IDENTITY).length],
    });
    expect(metrics.values.get(M.recognition.facesFailed)).toEqual({ unit: 'Count', values: [1] });
    const latency = metrics.values.get(M.recognition.answerLatency)!;
    expect(latency.unit).toBe('Milliseconds');
    expect(latency.values).toHaveLength(3);
    // From the timestamp to the answer: at least the time before the invocation, at most the time to its end.
    for (const ms of latency.values) {
      expect(ms).toBeGreaterThanOrEqual(started - queuedAt);
      expect(ms).toBeLessThanOrEqual(started + elapsed - queuedAt);
    }
    const batch = metrics.values.get(M.recognition.batchLatency)!;
    expect(batch.values).toHaveLength(1);
    expect(batch.values[0]).toBeLessThanOrEqual(elapsed + 5);
  });
});

describe('metrics that fail', () => {
  it('never fail the frame: the handler answers, and says once per metric that it could not count', async () => {
    const warned: { message: string; extra: Record<string, unknown> }[] = [];
    const logger = {
      debug() {},
      info() {},
      warn(message: string, extra: Record<string, unknown> = {}) {
        warned.push({ message, extra });
      },
      error() {},
    };
    const handler = createDetectionHandler({
      detector: { detectFaces: async () => [] },
      crop: { shape: 'square', size: 160, margin: 0 } as never,
      transport: new InMemoryQueueTransport(),
      requestQueue: 'rq',
      responseQueue: 'sq',
      logger,
      metrics: {
        add() {
          throw new Error('metrics store full');
        },
      },
    });
    const post = { body: '{}', isBase64Encoded: false, requestContext: { http: { method: 'POST' } } };
    expect((await handler(post)).statusCode).toBe(400);
    expect((await handler(post)).statusCode).toBe(400);
    expect(warned.filter((w) => w.message === 'could not count a metric')).toEqual([
      {
        message: 'could not count a metric',
        extra: { metric: 'FramesRefused', error: 'metrics store full' },
      },
    ]);
  });
});
