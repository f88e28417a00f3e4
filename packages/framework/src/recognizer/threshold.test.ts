import { describe, expect, it } from 'vitest';
import { MODELS } from '../registry/registry.js';
import {
  calibrationPrecisionMismatch,
  missingThresholdMessage,
  recommendedThreshold,
  resolveThreshold,
} from './threshold.js';

const FACEAPI = MODELS.embedder('faceapi-resnet').thresholds;

describe('resolveThreshold', () => {
  const base = { registry: MODELS, modelId: 'faceapi-resnet', metric: 'euclidean' as const };

  it('takes the explicit threshold first, then a calibrated or set gallery threshold, then the registry', () => {
    const raw = { threshold: 0, metric: 'euclidean' as const, isCalibrated: false };
    expect(resolveThreshold({ ...base, explicit: 0.2, gallery: raw })).toEqual({
      value: 0.2,
      source: 'option',
    });
    expect(resolveThreshold({ ...base, gallery: { ...raw, threshold: 0.3 } })).toEqual({
      value: 0.3,
      source: 'gallery',
    });
    // A calibration that came out at 0 (nothing reaches the target FAR) is the gallery's answer, not "unset".
    expect(resolveThreshold({ ...base, gallery: { ...raw, isCalibrated: true } })).toEqual({
      value: 0,
      source: 'gallery',
    });
    expect(resolveThreshold({ ...base, gallery: raw })).toEqual({
      value: FACEAPI.euclidean!.value,
      source: 'registry',
      measuredOn: FACEAPI.euclidean!.measuredOn,
    });
    // A gallery of another metric says nothing about this one.
    const cosine = { threshold: 0.05, metric: 'cosine' as const };
    expect(resolveThreshold({ ...base, gallery: cosine })?.source).toBe('registry');
  });

  it('finds the registry entry from a model id, and says why one ships no threshold', () => {
    expect(recommendedThreshold(MODELS, 'faceapi-resnet', 'cosine')).toBe(FACEAPI.cosine);
    expect(recommendedThreshold(MODELS, 'inception-resnet-v1/vggface2', 'euclidean')).toBeUndefined();
    expect(recommendedThreshold(MODELS, 'no-such-model', 'euclidean')).toBeUndefined();
    expect(resolveThreshold({ ...base, modelId: 'inception-resnet-v1/casia-webface' })).toBeUndefined();
    expect(missingThresholdMessage(MODELS, 'inception-resnet-v1/vggface2', 'euclidean')).toMatch(
      /^no euclidean threshold is known for inception-resnet-v1\/vggface2 \(none is shipped: .+\)$/,
    );
    expect(missingThresholdMessage(MODELS, 'mine', 'cosine')).toBe('no cosine threshold is known for mine');
  });
});

describe('calibrationPrecisionMismatch', () => {
  it('names the two precisions and the target FAR when they differ, and nothing otherwise', () => {
    expect(calibrationPrecisionMismatch({ precision: 'fp32', targetFar: 0.01 }, 'int8')).toBe(
      "the gallery's threshold was calibrated on fp32 embeddings and the faces are embedded at int8: its " +
        'false-accept rate may differ from the 0.01 it was calibrated for; calibrate it at int8',
    );
    expect(calibrationPrecisionMismatch({ precision: 'int8', targetFar: 0.001 }, 'fp32')).toMatch(
      /calibrated on int8 embeddings and the faces are embedded at fp32: .* the 0\.001 it .* calibrate it at fp32$/,
    );
    expect(calibrationPrecisionMismatch({ precision: 'int8', targetFar: 0.01 }, 'int8')).toBeUndefined();
    // Calibrated before the precision was recorded, or never calibrated: nothing to compare.
    expect(calibrationPrecisionMismatch({ targetFar: 0.01 }, 'int8')).toBeUndefined();
    expect(calibrationPrecisionMismatch(undefined, 'int8')).toBeUndefined();
  });
});
