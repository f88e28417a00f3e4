import { DisposedError } from './errors.js';

/**
 * The calls in flight on something that can be closed (an embedder, a gallery store): {@link CallGate.close}
 * lets the calls already running finish, and every call after it rejects with `DisposedError`. Without it a
 * gallery store closed under a running call either kept working after `close` (a file or S3 store still wrote)
 * or left the call pending forever (Postgres ended its pool under it).
 */
export class CallGate {
  readonly #what: string | (() => string);
  #closed = false;
  readonly #running = new Set<Promise<void>>();

  /**
   * `what`: the thing closed, as `DisposedError` names it (`gallery store s3://faces/staff.json`); a function
   * when the name is known only later (a subclass's field).
   */
  constructor(what: string | (() => string)) {
    this.#what = what;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** @throws DisposedError once {@link CallGate.close} was called. */
  assertOpen(): void {
    if (this.#closed) throw new DisposedError(typeof this.#what === 'string' ? this.#what : this.#what());
  }

  /** Runs `work` as a call in flight; rejects with `DisposedError` without running it once closed. */
  run<T>(work: () => Promise<T>): Promise<T> {
    let result: Promise<T>;
    try {
      this.assertOpen();
      result = work();
    } catch (error) {
      return Promise.reject(error);
    }
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#running.add(settled);
    void settled.then(() => this.#running.delete(settled));
    return result;
  }

  /**
   * Refuses new calls, then waits for those running (and any they started meanwhile). Resolves to `true` the
   * first time, `false` when it was already closed (a second close has nothing to release).
   */
  async close(): Promise<boolean> {
    const first = !this.#closed;
    this.#closed = true;
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
    return first;
  }
}
