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

export async function startEntry<H>(
  compose: (container: DependencyContainer) => Promise<H>,
): Promise<
  | { handler: H; failure?: undefined; logger: PipelineLogger }
  | { handler?: undefined; failure: unknown; logger: PipelineLogger }
> {
  let logger: PipelineLogger | undefined;
  try {
    const container = createPipelineContainer(loadConfig());
    logger = container.resolve<PipelineLogger>(TOKENS.logger);
    return { handler: await compose(container), logger };
  } catch (failure) {
    return { failure, logger: logger ?? createLogger('facerec') };
  }
}

/** An init failure for a log line: its class and message (the configuration's name the variable). */
export function describeFailure(failure: unknown): string {
  return failure instanceof Error ? `${failure.name}: ${failure.message}` : String(failure);
}
