/**
 * What both Lambda entry modules do at init: read the configuration and compose the handler (models load, the
 * detector warms up), with a logger for the invocations either way. A failure — a bad environment variable, a
 * model that cannot load — is returned, not thrown (that would only say "init failed", with a stack trace), so
 * that each invocation logs it as one structured line and refuses.
 */

import type { DependencyContainer } from 'tsyringe';
import { loadConfig } from '../config.js';
import { createPipelineContainer, TOKENS } from '../container.js';
import { createLogger, type PipelineLogger } from '../logger.js';
import { createLambdaMetrics, type LambdaMetrics } from '../metrics.js';

/**
 * Also made: the function's CloudWatch metrics, which the handler counts into and the entry module publishes
 * after each invocation (a failed start included: its frames or records count as failed).
 */
export async function startEntry<H>(
  service: 'detection' | 'recognition',
  compose: (container: DependencyContainer) => Promise<H>,
): Promise<
  | { handler: H; failure?: undefined; logger: PipelineLogger; metrics: LambdaMetrics }
  | { handler?: undefined; failure: unknown; logger: PipelineLogger; metrics: LambdaMetrics }
> {
  let logger: PipelineLogger | undefined;
  const metrics = createLambdaMetrics(service);
  try {
    const container = createPipelineContainer(loadConfig(), { metrics });
    logger = container.resolve<PipelineLogger>(TOKENS.logger);
    return { handler: await compose(container), logger, metrics };
  } catch (failure) {
    return { failure, logger: logger ?? createLogger('facerec'), metrics };
  }
}

/** An init failure for a log line: its class and message (the configuration's name the variable). */
export function describeFailure(failure: unknown): string {
  return failure instanceof Error ? `${failure.name}: ${failure.message}` : String(failure);
}
