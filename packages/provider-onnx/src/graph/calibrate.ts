import { type ActivationRange, calibrationModel, observeRange, quantizeModel } from './quantize.js';
import { createSession, loadOrt } from './session.js';

/** One calibration batch: NCHW float32 data as the model's input takes it. */
export interface CalibrationBatch {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/**
 * Runs the float model on the calibration batches with every activation that {@link quantizeModel}
 * quantizes exposed as an output, and returns each one's min/max (plus the input's, under its name).
 * Min/max rather than a percentile: on face crops the extremes are real (eyes, hair, glare), and clipping
 * them cost more embedding cosine than the coarser step did.
 */
export async function calibrateRanges(
  floatModel: Uint8Array,
  batches: readonly CalibrationBatch[],
  options: { readonly intraOpNumThreads?: number; readonly inputName?: string } = {},
): Promise<Map<string, ActivationRange>> {
  const { bytes, tensors } = calibrationModel(floatModel);
  const ort = await loadOrt();
  const session = await createSession(bytes, {
    ...(options.intraOpNumThreads === undefined ? {} : { intraOpNumThreads: options.intraOpNumThreads }),
    // The exposed activations keep every intermediate alive; the arena would hold that peak for good.
    cpuMemArena: false,
  });
  const inputName = options.inputName ?? session.inputNames[0]!;
  const ranges = new Map<string, ActivationRange>();
  try {
    for (const batch of batches) {
      observeRange(ranges, inputName, batch.data);
      const result = await session.run(
        { [inputName]: new ort.Tensor('float32', batch.data, [...batch.dims]) },
        tensors,
      );
      for (const name of tensors) observeRange(ranges, name, result[name]!.data as Float32Array);
    }
  } finally {
    await session.release();
  }
  return ranges;
}

/**
 * The int8 (QDQ) form of a float model, calibrated on `batches` (see {@link calibrateRanges} and
 * {@link quantizeModel}).
 *
 * @example
 * ```ts
 * const int8 = await quantizeStatic(buildInceptionResnetV1(stateDict), [{ data, dims: [n, 3, 160, 160] }]);
 * const session = await createSession(int8, { intraOpNumThreads: 2 });
 * ```
 */
export async function quantizeStatic(
  floatModel: Uint8Array,
  batches: readonly CalibrationBatch[],
  options: { readonly intraOpNumThreads?: number } = {},
): Promise<Uint8Array> {
  return quantizeModel(floatModel, await calibrateRanges(floatModel, batches, options));
}
