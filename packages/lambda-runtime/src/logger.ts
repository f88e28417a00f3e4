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
  /**
   * Adds the Lambda invocation's context to every later entry (function name, version, `function_request_id`,
   * `cold_start`), so each line can be tied to Lambda's REPORT line; the entry modules call it per invocation.
   * Loggers that are not Powertools' may leave it out.
   */
  addContext?(context: LambdaInvocationContext): void;
}

/** What {@link PipelineLogger.addContext} reads of Lambda's context object. */
export interface LambdaInvocationContext {
  readonly functionName: string;
  readonly functionVersion: string;
  readonly invokedFunctionArn: string;
  readonly memoryLimitInMB: string;
  readonly awsRequestId: string;
}

/**
 * A Powertools logger (JSON lines, level from `POWERTOOLS_LOG_LEVEL` / `LOG_LEVEL`, default INFO; `logLevel`
 * sets it instead, e.g. `'WARN'` for warnings and errors only).
 */
export function createLogger(
  serviceName: string,
  logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR',
): PipelineLogger {
  const logger = new Logger({ serviceName, ...(logLevel ? { logLevel } : {}) });
  return {
    debug: (m, e) => logger.debug(m, e ?? {}),
    info: (m, e) => logger.info(m, e ?? {}),
    warn: (m, e) => logger.warn(m, e ?? {}),
    error: (m, e) => logger.error(m, e ?? {}),
    // Powertools reads these fields (and `getRemainingTimeInMillis`, which it does not need) of aws-lambda's
    // `Context`; the cast spares the handlers a dependency on @types/aws-lambda.
    addContext: (context) => logger.addContext(context as Parameters<Logger['addContext']>[0]),
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
