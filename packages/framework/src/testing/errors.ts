/**
 * What `fn` threw, for tests that inspect the error itself (its class marker, fields, cause) rather than only
 * its message. Throws when `fn` returns normally. Free of test-runner imports.
 *
 * @example
 * const error = thrownBy(() => buildRNet(misShaped));
 * expect(CheckpointError.isInstance(error)).toBe(true);
 */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw, but it returned');
}
