import { PIPELINE_METRICS } from '@facerec/framework';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PipelineMetrics } from '../metrics.js';

/** Latency buckets in seconds, 5 ms to 30 s: a frame on one machine takes tens of milliseconds to seconds. */
export const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

/** Metrics of the local runtime's host only (`facerec serve`), counted through the same `add`. */
export const LOCAL_METRICS = Object.freeze({
  /** Faces moved to the dead-letter queue (Count). */
  facesDeadLettered: 'FacesDeadLettered',
});

const D = PIPELINE_METRICS.detection;
const R = PIPELINE_METRICS.recognition;
/** Every metric the handlers count, with its unit and what it says. */
const PIPELINE: readonly (readonly [name: string, unit: 'Count' | 'Milliseconds', help: string])[] = [
  [D.framesAccepted, 'Count', 'Frames answered 200'],
  [D.framesRefused, 'Count', 'Frames the detection handler answered 4xx'],
  [D.framesFailed, 'Count', 'Frames the detection handler answered 5xx'],
  [D.facesDetected, 'Count', 'Faces sent to recognition'],
  [D.frameLatency, 'Milliseconds', 'Per accepted frame: decode, detect, crop and queue'],
  [R.facesAnswered, 'Count', 'Faces answered'],
  [R.facesUnknown, 'Count', 'Faces answered unknown'],
  [R.facesFailed, 'Count', 'Face records handed back to the request queue, to be delivered again'],
  [R.answerLatency, 'Milliseconds', 'Per face answered: from detection queuing it to its answer sent'],
  [R.batchLatency, 'Milliseconds', 'Per batch of face records recognised'],
  [
    LOCAL_METRICS.facesDeadLettered,
    'Count',
    'Faces moved to the dead-letter queue after 5 deliveries: their frames got no answer for them',
  ],
];

/**
 * The Prometheus name of a pipeline metric: `FramesAccepted` → `facerec_frames_accepted_total` (a counter),
 * `DetectionLatency` → `facerec_detection_latency_seconds` (a histogram, in seconds as Prometheus wants).
 */
export function prometheusName(name: string, unit: 'Count' | 'Milliseconds'): string {
  const snake = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();
  return `facerec_${snake}_${unit === 'Count' ? 'total' : 'seconds'}`;
}

/** The handlers' metrics as Prometheus counters and histograms, and the registry `GET /metrics` reads. */
export interface PrometheusMetrics extends PipelineMetrics {
  readonly registry: Registry;
}

/**
 * Pipeline metrics for the local runtime's `GET /metrics` (Prometheus text format, by prom-client): every
 * metric of `PIPELINE_METRICS` from the start (counters at zero, so a rate sees the first frames), plus
 * Node's process metrics (CPU, memory, event-loop delay, garbage collection) unless `processMetrics` is false.
 * The local runtime adds its queues, admission and refusals to the same registry.
 */
export function createPrometheusMetrics(
  options: {
    processMetrics?: boolean;
    /**
     * What serves, as the labels of `facerec_inference_info` (value 1), e.g. `{ provider, embedder, precision }`:
     * a dashboard tells runs apart by them.
     */
    info?: Readonly<Record<string, string>>;
  } = {},
): PrometheusMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  if (options.info) {
    new Gauge({
      name: 'facerec_inference_info',
      help: 'What serves: provider, embedder model, precision (value 1)',
      labelNames: Object.keys(options.info),
      registers: [registry],
    }).set({ ...options.info }, 1);
  }
  const record = new Map<string, (value: number) => void>();
  const define = (name: string, unit: 'Count' | 'Milliseconds', help: string) => {
    let add: (value: number) => void;
    if (unit === 'Count') {
      const counter = new Counter({ name: prometheusName(name, unit), help, registers: [registry] });
      add = (value) => counter.inc(value);
    } else {
      const histogram = new Histogram({
        name: prometheusName(name, unit),
        help: `${help} (seconds)`,
        buckets: LATENCY_BUCKETS_SECONDS,
        registers: [registry],
      });
      add = (value) => histogram.observe(value / 1000);
    }
    record.set(`${unit} ${name}`, add);
    return add;
  };
  for (const [name, unit, help] of PIPELINE) define(name, unit, help);
  return {
    registry,
    add(name, unit, value) {
      // A metric of a handler of one's own gets its series when first added.
      (record.get(`${unit} ${name}`) ?? define(name, unit, `${name} (added by a handler)`))(value);
    },
  };
}
