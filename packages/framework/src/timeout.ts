/**
 * Runs `work` with a signal that aborts after `timeoutMs`, or when `stop` aborts, and settles then even when
 * `work` ignores its signal: raced as well as passed, since a caller's `fetch` or sender may not honour it.
 * Rejects with `timedOut()` on the timeout and with `stop`'s reason on a stop; the timer and the listener on `stop`
 * are gone once it settles.
 *
 * @example
 * const res = await withTimeout((signal) => fetch(url, { signal }), 8000, () => new Error('no response in 8 s'));
 */
export async function withTimeout<T>(
  work: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number,
  timedOut: () => Error,
  stop?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onStop: (() => void) | undefined;
  const ended = new Promise<never>((_, reject) => {
    const end = (reason: unknown) => {
      controller.abort(reason);
      reject(reason);
    };
    timer = setTimeout(() => end(timedOut()), timeoutMs);
    if (stop) {
      onStop = () => end(stop.reason);
      if (stop.aborted) onStop();
      else stop.addEventListener('abort', onStop, { once: true });
    }
  });
  ended.catch(() => {});
  try {
    return await Promise.race([work(controller.signal), ended]);
  } finally {
    clearTimeout(timer);
    if (onStop) stop?.removeEventListener('abort', onStop);
  }
}
