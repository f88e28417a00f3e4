import type { DetectFacesOptions, RgbImage, SerializedError, WarmUpFrame } from '@facerec/framework';

/** What an inference worker starts with (its `workerData`). */
export interface WorkerSetup {
  /** Provider name in the built-in registry, e.g. `onnx`. */
  readonly provider: string;
  /** Inference threads of this worker's sessions. */
  readonly threads: number;
  /** Whether this worker's provider prints its informational lines (tfjs: which backend runs). */
  readonly announce: boolean;
}

interface ModelRef {
  readonly model: string;
  readonly options: Record<string, unknown>;
}

/** A job for a worker; `id` pairs it with its {@link WorkerReply}. */
export type WorkerJob = { readonly id: number } & (
  | (ModelRef & { readonly kind: 'detector-ready' })
  | (ModelRef & { readonly kind: 'warm-up'; readonly frame?: WarmUpFrame | undefined })
  | (ModelRef & {
      readonly kind: 'detect';
      readonly images: readonly RgbImage[];
      readonly detectOptions?: DetectFacesOptions | undefined;
    })
  | (ModelRef & { readonly kind: 'embedder-load' })
  | (ModelRef & { readonly kind: 'embed'; readonly faces: readonly RgbImage[] })
  | { readonly kind: 'dispose' }
);

/** A worker's answer to job `id` (`-1`: the worker has started). */
export interface WorkerReply {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: SerializedError;
}
