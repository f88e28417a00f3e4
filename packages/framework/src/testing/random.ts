/**
 * A seeded PRNG for tests, fixtures, benchmarks and calibration's impostor sample (mulberry32: uniform numbers
 * in [0, 1)), so that a run can be reproduced exactly. Free of test-runner imports, so scripts and the library
 * can use it too.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
