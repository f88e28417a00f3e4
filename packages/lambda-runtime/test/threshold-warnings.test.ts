import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type FaceProvider, type FileGallery, FileGalleryStore, MODELS } from '@facerec/framework';
import { describeWithSharedData, sharedMirrorStore } from '@facerec/framework/testing';
import {
  composeRecognition,
  createPipelineContainer,
  loadConfig,
  type PipelineLogger,
} from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bbtFaceMessage, PIPELINE_DATA, pipelineParts } from './fixtures.js';

/**
 * What the recognition function warns of at init about the threshold it will match at: a gallery never
 * calibrated (the registry's threshold), and one calibrated at the other embedder precision than
 * FACEREC_PRECISION's. Composed from configuration as on Lambda, with the gallery given directly.
 */
describeWithSharedData('recognition init: warnings about the threshold', PIPELINE_DATA, () => {
  let enrolled: FileGallery;
  /** The calibration record of a gallery calibrated at `precision` (or before precisions were recorded). */
  const calibrated = (precision?: 'fp32' | 'int8') =>
    enrolled.withThreshold(0.45, {
      method: 'probes',
      targetFar: 0.01,
      achievedFar: 0.01,
      achievedFrr: 0,
      genuinePairs: 24,
      impostorPairs: 168,
      calibratedAt: '2026-12-01T00:00:00.000Z',
      equalErrorRate: { threshold: 0.44, rate: 0.01 },
      keyPoints: [],
      ...(precision ? { precision } : {}),
    });

  /** The warnings logged while composing recognition over `gallery` with the extra settings `env`. */
  const initWarnings = async (gallery: FileGallery, env: Record<string, string> = {}) => {
    const warnings: { message: string; extra: Record<string, unknown> }[] = [];
    const logger: PipelineLogger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (message, extra) => warnings.push({ message, extra: extra ?? {} }),
      error: () => undefined,
    };
    const config = loadConfig({
      FACEREC_EMBEDDER: 'faceapi-resnet',
      FACEREC_REQUEST_QUEUE_URL: 'requests',
      FACEREC_RESPONSE_QUEUE_URL: 'responses',
      ...env,
    });
    await composeRecognition(
      createPipelineContainer(config, { transport: new InMemoryQueueTransport(), provider, logger, gallery }),
    );
    return warnings;
  };

  // One model cache for every composition (the fp32 graph converted once, the int8 one built once).
  const cache = mkdtempSync(path.join(tmpdir(), 'facerec-threshold-warnings-'));
  let provider: FaceProvider;
  beforeAll(async () => {
    ({ gallery: enrolled } = await pipelineParts());
    provider = createOnnxProvider({ modelStore: await sharedMirrorStore(cache) });
  });
  afterAll(async () => {
    await rm(cache, { recursive: true, force: true });
  });

  it('warns when the threshold was calibrated at the other precision, naming both', async () => {
    expect(await initWarnings(calibrated('int8'))).toEqual([
      {
        message: 'gallery threshold calibrated at another embedder precision',
        extra: {
          calibrationPrecision: 'int8',
          embedderPrecision: 'fp32',
          reason:
            "the gallery's threshold was calibrated on int8 embeddings and the faces are embedded at fp32: its " +
            'false-accept rate may differ from the 0.01 it was calibrated for; calibrate it at fp32',
        },
      },
    ]);
    const [int8] = await initWarnings(calibrated('fp32'), { FACEREC_PRECISION: 'int8' });
    expect(int8?.extra).toMatchObject({ calibrationPrecision: 'fp32', embedderPrecision: 'int8' });
  }, 60_000);

  it('says nothing at the same precision, for a calibration that did not record one, or with FACEREC_THRESHOLD', async () => {
    expect(await initWarnings(calibrated('fp32'))).toEqual([]);
    expect(await initWarnings(calibrated('int8'), { FACEREC_PRECISION: 'int8' })).toEqual([]);
    expect(await initWarnings(calibrated())).toEqual([]);
    expect(await initWarnings(calibrated('int8'), { FACEREC_THRESHOLD: '0.5' })).toEqual([]);
  }, 60_000);

  it("warns of a gallery never calibrated: matched at the registry's threshold", async () => {
    const never = enrolled.withThreshold(0);
    const [warning] = await initWarnings(never);
    expect(warning).toEqual({
      message: "gallery never calibrated: matching at the embedder's recommended threshold",
      extra: {
        modelId: 'faceapi-resnet',
        metric: 'euclidean',
        threshold: MODELS.embedder('faceapi-resnet').thresholds.euclidean!.value,
      },
    });
  }, 60_000);

  it('matches at a threshold changed in the store from the first batch that sees it, and logs the change', async () => {
    const file = path.join(cache, 'changing.gallery.json');
    await enrolled.withThreshold(0).save(file); // never calibrated: the registry's threshold
    const gallery = await FileGalleryStore.open(file, { reloadIntervalMs: 0 });
    const other = await FileGalleryStore.open(file);
    const logs: { message: string; extra: Record<string, unknown> }[] = [];
    const record = (message: string, extra?: Record<string, unknown>) =>
      logs.push({ message, extra: extra ?? {} });
    const logger: PipelineLogger = { debug: () => undefined, info: record, warn: record, error: record };
    const transport = new InMemoryQueueTransport();
    const config = loadConfig({
      FACEREC_EMBEDDER: 'faceapi-resnet',
      FACEREC_REQUEST_QUEUE_URL: 'requests',
      FACEREC_RESPONSE_QUEUE_URL: 'responses',
    });
    const handler = await composeRecognition(
      createPipelineContainer(config, { transport, provider, logger, gallery }),
    );
    let n = 0;
    /** Who amy3's face is answered as, sent as one batch. */
    const recognise = async () => {
      const body = JSON.stringify(await bbtFaceMessage('amy', 3, `amy3-${++n}`));
      const result = await handler({
        Records: [{ messageId: `m${n}`, body, attributes: { ApproximateReceiveCount: '1' } }],
      });
      expect(result.batchItemFailures).toEqual([]);
      const [answer] = await transport.receive('responses', { maxMessages: 1, waitTimeSeconds: 0 });
      await transport.acknowledge('responses', [answer!]);
      return (JSON.parse(answer!.body) as { result: string }).result;
    };
    try {
      expect(await recognise()).toBe('amy');
      await other.setThreshold(0.05, {
        method: 'probes',
        targetFar: 0.01,
        achievedFar: 0,
        achievedFrr: 0.5,
        genuinePairs: 24,
        impostorPairs: 168,
        calibratedAt: '2026-12-03T00:00:00.000Z',
        equalErrorRate: { threshold: 0.3, rate: 0.1 },
        keyPoints: [],
        precision: 'fp32',
      });
      expect(await recognise()).toBe('unknown'); // the first batch after the change
      await other.setThreshold(0); // back to never calibrated
      expect(await recognise()).toBe('amy');
      expect(logs.filter((l) => l.message === 'matching threshold changed').map((l) => l.extra)).toEqual([
        {
          threshold: 0.05,
          source: 'gallery',
          previous_threshold: MODELS.embedder('faceapi-resnet').thresholds.euclidean!.value,
          previous_source: 'registry',
        },
        {
          threshold: MODELS.embedder('faceapi-resnet').thresholds.euclidean!.value,
          source: 'registry',
          previous_threshold: 0.05,
          previous_source: 'gallery',
        },
      ]);
    } finally {
      await Promise.all([gallery.close(), other.close()]);
    }
  }, 60_000);
});
