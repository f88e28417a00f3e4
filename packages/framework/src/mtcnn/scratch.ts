/**
 * Reusable typed-array buffers for the cascade, one set per detector.
 *
 * Allocating fresh multi-megabyte arrays per frame is the slowest thing the cascade could do in a
 * Firecracker microVM (Lambda, and this project's CI machines): first-touching 22 MB costs ~80 ms there,
 * more than the arithmetic done in it. Buffers grow to the largest size seen and are then reused; callers
 * must not run two cascades on one pool at the same time (the detector serialises its calls).
 */
export class ScratchPool {
  readonly #f32 = new Map<string, Float32Array>();
  readonly #u32 = new Map<string, Uint32Array>();

  /** A Float32Array view of exactly `length` elements (contents unspecified). */
  float32(key: string, length: number): Float32Array {
    return view(this.#f32, key, length, (n) => new Float32Array(n));
  }

  /** A Uint32Array view of exactly `length` elements (contents unspecified). */
  uint32(key: string, length: number): Uint32Array {
    return view(this.#u32, key, length, (n) => new Uint32Array(n));
  }
}

function view<T extends Float32Array | Uint32Array>(
  map: Map<string, T>,
  key: string,
  length: number,
  make: (n: number) => T,
): T {
  let buffer = map.get(key);
  if (!buffer || buffer.length < length) {
    // Grow by 25 % beyond the request so slowly growing sizes do not reallocate every call.
    buffer = make(Math.ceil(length * 1.25));
    map.set(key, buffer);
  }
  return buffer.subarray(0, length) as T;
}
