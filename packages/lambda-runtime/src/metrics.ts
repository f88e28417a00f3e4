import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { PIPELINE_METRICS } from '@facerec/framework';

/**
 * Where the handlers count what they did (frames, faces, latencies): the names are `PIPELINE_METRICS`'. On
 * Lambda the entry modules publish them as CloudWatch metrics ({@link createLambdaMetrics}); `facerec serve`
 * serves them on `GET /metrics` (`createPrometheusMetrics`); without one, {@link noMetrics} drops them.
 */
export interface PipelineMetrics {
  /** One value of a metric; a metric added several times in an invocation keeps every value. */
  add(name: string, unit: 'Count' | 'Milliseconds', value: number): void;
}

/** Metrics that go nowhere (the default of the handlers). */
export const noMetrics: PipelineMetrics = Object.freeze({ add() {} });

/**
 * `metrics` as the handlers use them: a value that cannot be counted (a metrics library refusing it) never
 * fails the frame or the batch; it is logged, once per metric.
 */
export function guardedMetrics(
  metrics: PipelineMetrics | undefined,
  logger: { warn(message: string, ...extra: Record<string, unknown>[]): void },
): PipelineMetrics {
  if (!metrics) return noMetrics;
  const reported = new Set<string>();
  return {
    add(name, unit, value) {
      try {
        metrics.add(name, unit, value);
      } catch (error) {
        if (reported.has(name)) return;
        reported.add(name);
        logger.warn('could not count a metric', {
          metric: name,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    },
  };
}

/** {@link PipelineMetrics} that an entry module publishes at the end of each invocation. */
export interface LambdaMetrics extends PipelineMetrics {
  /** Writes the invocation's values (one embedded-metric-format line on stdout) and forgets them. */
  publish(): void;
}

/**
 * Powertools' metrics for one of the pipeline's functions: namespace `facerec` (`PIPELINE_METRICS.namespace`,
 * unless `POWERTOOLS_METRICS_NAMESPACE` names another), dimensions `service` and `FunctionName` (Lambda's
 * `AWS_LAMBDA_FUNCTION_NAME`), written as embedded metric format, which CloudWatch Logs turns into metrics:
 * the function needs no permission beyond writing its logs. `POWERTOOLS_METRICS_DISABLED=true` turns them off.
 */
export function createLambdaMetrics(service: 'detection' | 'recognition'): LambdaMetrics {
  const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME;
  const metrics = new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || PIPELINE_METRICS.namespace,
    serviceName: service,
    ...(functionName ? { defaultDimensions: { FunctionName: functionName } } : {}),
  });
  let stored = false;
  return {
    add(name, unit, value) {
      metrics.addMetric(name, unit === 'Count' ? MetricUnit.Count : MetricUnit.Milliseconds, value);
      stored = true;
    },
    publish() {
      // Powertools warns about an invocation without values; an invocation here always has some, except a
      // batch with no records, which is nothing to report.
      if (!stored) return;
      stored = false;
      metrics.publishStoredMetrics();
    },
  };
}
