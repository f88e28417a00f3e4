import { InMemoryQueueTransport } from '@facerec/framework';
import { describeWithSharedData } from '@facerec/framework/testing';
import {
  createDetectionHandler,
  createRecognitionHandler,
  loadFrames,
  localResponses,
  runWorkload,
  type SqsEvent,
  startLocalRuntime,
} from '@facerec/lambda-runtime';
import { expect, it } from 'vitest';
import { bbtSubset, PIPELINE_DATA, pipelineParts } from './fixtures.js';

describeWithSharedData(
  'local runtime (HTTP + in-process queue + recognition consumer)',
  PIPELINE_DATA,
  () => {
    async function start(options: { killFirstBatch?: boolean; visibilityTimeoutSeconds?: number } = {}) {
      const { detector, embedder, gallery } = await pipelineParts();
      const transport = new InMemoryQueueTransport({
        queues: {
          requests: {
            visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 30,
            maxReceiveCount: 5,
            deadLetterQueue: 'requests-dlq',
          },
        },
      });
      const recognise = createRecognitionHandler({
        embedder,
        gallery,
        transport,
        responseQueue: 'responses',
      });
      let invocations = 0;
      const recognition = async (event: SqsEvent) => {
        invocations++;
        // The first invocation "dies" before acknowledging anything, like a Lambda killed mid-batch.
        if (options.killFirstBatch && invocations === 1) throw new Error('killed');
        return recognise(event);
      };
      const runtime = await startLocalRuntime({
        detection: createDetectionHandler({
          detector,
          transport,
          requestQueue: 'requests',
          responseQueue: 'responses',
        }),
        recognition,
        transport,
        requestQueue: 'requests',
        responseQueue: 'responses',
        port: 0,
      });
      return { runtime, transport, invocations: () => invocations };
    }

    it('answers every request exactly once, naming the probes', async () => {
      const { runtime, transport } = await start();
      try {
        const frames = await loadFrames(bbtSubset([3, 4]));
        const report = await runWorkload({
          url: runtime.url,
          frames,
          responses: localResponses(runtime.url),
          requests: 32,
          concurrency: 8,
        });
        expect(report.answered).toBe(32);
        expect(report.unanswered).toEqual([]);
        expect(report.rejected).toBe(0);
        expect(report.duplicates).toBe(0);
        expect(report.accuracy.faces).toBe(32);
        expect(report.accuracy.correct).toBeGreaterThanOrEqual(28);
        expect(transport.depth('requests-dlq')).toBe(0);
        console.log(
          `local runtime: 32 requests, avg ${report.latencyMs.avg.toFixed(0)} ms, p95 ${report.latencyMs.p95.toFixed(0)} ms, accuracy ${report.accuracy.correct}/32`,
        );
      } finally {
        await runtime.close();
      }
    });

    it('redelivers and answers the messages of a recognition invocation killed mid-batch', async () => {
      const { runtime, invocations } = await start({ killFirstBatch: true, visibilityTimeoutSeconds: 1 });
      try {
        const frames = await loadFrames(bbtSubset([3]));
        const report = await runWorkload({
          url: runtime.url,
          frames,
          responses: localResponses(runtime.url),
          requests: 8,
          concurrency: 8,
          timeoutMs: 20_000,
        });
        expect(invocations()).toBeGreaterThanOrEqual(2);
        expect(report.answered).toBe(8);
        expect(report.duplicates).toBe(0);
      } finally {
        await runtime.close();
      }
    });

    it('answers 4xx for malformed requests over HTTP', async () => {
      const { runtime } = await start();
      try {
        const bad = await fetch(runtime.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{',
        });
        expect(bad.status).toBe(400);
        expect(await bad.json()).toMatchObject({ error: expect.any(String), request_id: null });
        const big = await fetch(runtime.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: 'x'.repeat(7 * 1024 * 1024),
        });
        expect(big.status).toBe(413);
      } finally {
        await runtime.close();
      }
    });
  },
);
