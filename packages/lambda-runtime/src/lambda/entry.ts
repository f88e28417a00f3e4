/**
 * What both Lambda entry modules do at init: read the configuration and compose the handler, with a logger
 * for the invocations either way. A configuration error (a bad environment variable) becomes a rejected
 * `ready`, as a model that cannot load does, so that it is logged as one structured line per invocation
 * instead of an import failure's stack trace.
 */

import type { DependencyContainer } from 'tsyringe';
import { loadConfig } from '../config.js';
import { createPipelineContainer, TOKENS } from '../container.js';
import { createLogger, type PipelineLogger } from '../logger.js';

export function composeEntry<H>(compose: (container: DependencyContainer) => Promise<H>): {
  ready: Promise<H>;
  logger: PipelineLogger;
} {
  try {
    const container = createPipelineContainer(loadConfig());
    return { ready: compose(container), logger: container.resolve<PipelineLogger>(TOKENS.logger) };
  } catch (error) {
    return { ready: Promise.reject(error), logger: createLogger('facerec') };
  }
}

/** An init failure for a log line: its class and message (the configuration's name the variable). */
export function describeFailure(failure: unknown): string {
  return failure instanceof Error ? `${failure.name}: ${failure.message}` : String(failure);
}
