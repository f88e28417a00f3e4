import { Logger } from '@aws-lambda-powertools/logger';

/**
 * What the handlers log through. Every entry is structured (JSON on Lambda) and carries `request_id` where
 * there is one; nothing logged ever holds image bytes or embeddings.
 */
export interface PipelineLogger {
  // Rest parameters, not optional ones: a Powertools `Logger` (`...extraInput`) only fits this form.
  debug(message: string, ...extra: Record<string, unknown>[]): void;
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

/** A Powertools logger (JSON lines, level from `POWERTOOLS_LOG_LEVEL` / `LOG_LEVEL`, default INFO). */
export function createLogger(serviceName: string): PipelineLogger {
  const logger = new Logger({ serviceName });
  return {
    debug: (m, e) => logger.debug(m, e ?? {}),
    info: (m, e) => logger.info(m, e ?? {}),
    warn: (m, e) => logger.warn(m, e ?? {}),
    error: (m, e) => logger.error(m, e ?? {}),
  };
}

/** A logger that drops everything (tests, or callers that log elsewhere). */
export const silentLogger: PipelineLogger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/** Milliseconds since `start`, rounded to 0.1 ms, for the per-stage timings in the logs. */
export function since(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}
