/**
 * What both Lambda entry modules do at init: read the configuration and compose the handler (models load, the
 * detector warms up), with a logger for the invocations either way. A failure — a bad environment variable, a
 * model that cannot load — is returned, not thrown (that would only say "init failed", with a stack trace), so
 * that each invocation logs it as one structured line and refuses; one that can pass (a gallery not uploaded
 * yet) is tried again by later invocations.
 */

import { FacerecError } from '@facerec/framework';
import { unknownVariables } from '@facerec/framework/registry';
import type { DependencyContainer } from 'tsyringe';
import { TOKENS } from '../container.js';
import { createLogger, type PipelineLogger } from '../logger.js';
import { createLambdaMetrics, type LambdaMetrics } from '../metrics.js';

/**
 * How long after a failed start whose cause can pass without a new deployment (see `passes`) an invocation
 * tries to start again; in between, invocations refuse at once.
 */
export const RESTART_INTERVAL_MS = 10_000;

/**
 * Start failures that can pass while the function runs, because they are about the gallery's store (or the
 * idempotency table), which change without a deployment: the gallery not uploaded yet (the reference stack deploys its bucket empty),
 * its store out of reach or busy, access not granted yet (IAM changes take a moment), a bad version uploaded
 * (corrupt, too large, another embedder's) that a good one replaces. The models, loaded by then, are kept;
 * only the gallery (and the idempotency table's check) are tried again. Anything else (a bad variable, a model that cannot load) needs a new
 * deployment.
 */
function passes(failure: unknown): boolean {
  return FacerecError.isInstance(failure) && PASSING.has(failure.code);
}
const PASSING = new Set([
  'GALLERY_NOT_FOUND',
  'GALLERY_UNREACHABLE',
  'GALLERY_ACCESS_DENIED',
  'GALLERY_BUCKET_MISSING',
  'GALLERY_STORE_REFUSED',
  'INVALID_GALLERY',
  'GALLERY_TOO_LARGE',
  'EMBEDDER_MISMATCH',
  // The idempotency table: access not granted yet, or out of reach for a moment.
  'IDEMPOTENCY_STORE_UNAVAILABLE',
]);

/** The handler, or why the function could not start. */
export type Started<H> =
  | { readonly handler: H; readonly failure?: undefined }
  | { readonly handler?: undefined; readonly failure: unknown };

/** A Lambda entry module's start: see {@link startEntry}. */
export interface LambdaEntry<H> {
  /**
   * The handler, or the failure of the last start; after a failure that can pass, a new start at most every
   * {@link RESTART_INTERVAL_MS} (one at a time).
   */
  started(): Promise<Started<H>>;
  readonly logger: PipelineLogger;
  /**
   * The function's CloudWatch metrics, which the handler counts into and the entry module publishes after each
   * invocation (a failed start included: its frames or records count as failed).
   */
  readonly metrics: LambdaMetrics;
}

/**
 * Starts an entry module's handler, composed by `compose` from the container `containerFor` builds (the
 * configuration from the environment: see `createDetectionLambda`; tests give their own).
 */
export async function startEntry<H>(
  service: 'detection' | 'recognition',
  compose: (container: DependencyContainer) => Promise<H>,
  containerFor: (metrics: LambdaMetrics) => DependencyContainer,
): Promise<LambdaEntry<H>> {
  const metrics = createLambdaMetrics(service);
  let container: DependencyContainer | undefined;
  let logger: PipelineLogger | undefined;
  const attempt = async (): Promise<Started<H>> => {
    try {
      container ??= containerFor(metrics);
      logger ??= container.resolve<PipelineLogger>(TOKENS.logger);
      return { handler: await compose(container) };
    } catch (failure) {
      return { failure };
    }
  };
  let state = await attempt();
  let triedAt = Date.now();
  let failedStarts = state.handler === undefined ? 1 : 0;
  let restarting: Promise<Started<H>> | undefined;
  const log = logger ?? createLogger('facerec');
  // Once, at start: a misspelt variable is otherwise ignored without a word (only names are logged, no values).
  const unknown = unknownVariables();
  if (unknown.length) {
    log.warn('FACEREC_ variables that facerec does not read are ignored', {
      variables: unknown.map(({ name, meant }) => (meant ? `${name} (did you mean ${meant}?)` : name)),
    });
  }
  return {
    logger: log,
    metrics,
    started: () => {
      if (state.handler !== undefined || !passes(state.failure)) return Promise.resolve(state);
      if (restarting === undefined && Date.now() - triedAt < RESTART_INTERVAL_MS)
        return Promise.resolve(state);
      restarting ??= attempt().then((next) => {
        state = next;
        triedAt = Date.now();
        restarting = undefined;
        if (next.handler === undefined) failedStarts++;
        else log.info(`the ${service} function started`, { failed_starts_before: failedStarts });
        return next;
      });
      return restarting;
    },
  };
}

/** An init failure for a log line: its class and message (the configuration's name the variable). */
export function describeFailure(failure: unknown): string {
  return failure instanceof Error ? `${failure.name}: ${failure.message}` : String(failure);
}
