/**
 * Errors raised by facerec packages.
 *
 * Every error extends {@link FacerecError}. Errors caused by what a caller passed in (a bad image, an
 * unknown option, a refused checkpoint) extend {@link FacerecInputError}, so request handlers can answer
 * 4xx for those and 5xx for everything else. Each class declares its marker name in a static `errorName`;
 * instances carry the marker names of their whole class chain under a `Symbol.for` key, which keeps the
 * static `isInstance` working when two copies of the package are installed, and when a bundler renames or
 * minifies the classes.
 */

const markerKey = Symbol.for('facerec.error');

type ErrorClass<T> = abstract new (...args: never[]) => T;

// A class that declares no `errorName` of its own (a subclass outside facerec, say) falls back to its
// class name, which is what every copy of facerec before explicit markers used.
function markerName(ctor: object): string {
  if (Object.hasOwn(ctor, 'errorName')) return (ctor as { errorName: string }).errorName;
  return (ctor as { name: string }).name;
}

/** Base class of every error facerec throws. */
export class FacerecError extends Error {
  /**
   * The marker name of this class: its `name` and what {@link FacerecError.isInstance} matches. Declared
   * explicitly in every class because minifiers rename classes; unique across facerec, and a subclass outside
   * facerec should prefix it with its package name.
   */
  static readonly errorName: string = 'FacerecError';

  /** Marker names of this error's classes, most derived first; the cross-copy marker that `isInstance` reads. */
  readonly [markerKey]: readonly string[];
  /** Stable machine-readable code, e.g. `IMAGE_TOO_LARGE`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = markerName(new.target);
    this.code = code;
    const names: string[] = [];
    for (let ctor: object = new.target; ctor !== Error; ctor = Object.getPrototypeOf(ctor)) {
      names.push(markerName(ctor));
    }
    this[markerKey] = names;
  }

  /**
   * True when `error` is an instance of this class (or a subclass), even one thrown by another copy of
   * the package: `InvalidImageError.isInstance(e)`, `FacerecInputError.isInstance(e)`.
   */
  static isInstance<T>(this: ErrorClass<T>, error: unknown): error is T {
    if (typeof error !== 'object' || error === null || !(markerKey in error)) return false;
    const names = (error as { [markerKey]: unknown })[markerKey];
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class isInstance was called on, by design.
    return Array.isArray(names) && names.includes(markerName(this));
  }
}

/** An error caused by the caller's input (request body, image, option, file). Maps to HTTP 4xx. */
export class FacerecInputError extends FacerecError {
  static override readonly errorName: string = 'FacerecInputError';
}

/** Bytes that are not a decodable image of a supported format (JPEG, PNG, WebP), or are corrupt. */
export class InvalidImageError extends FacerecInputError {
  static override readonly errorName: string = 'InvalidImageError';
  /** Detected format, when the bytes were recognised as some format. */
  readonly format: string | undefined;
  constructor(message: string, options?: { format?: string; cause?: unknown }) {
    super('INVALID_IMAGE', message, options);
    this.format = options?.format;
  }
}

/** An image recognised but in a format facerec refuses (GIF, SVG, TIFF, ...). */
export class UnsupportedImageFormatError extends FacerecInputError {
  static override readonly errorName: string = 'UnsupportedImageFormatError';
  readonly format: string;
  readonly supported: readonly string[];
  constructor(format: string, supported: readonly string[]) {
    super(
      'UNSUPPORTED_IMAGE_FORMAT',
      `Unsupported image format "${format}"; supported formats: ${supported.join(', ')}`,
    );
    this.format = format;
    this.supported = supported;
  }
}

/** An image over the byte or pixel limit. */
export class ImageTooLargeError extends FacerecInputError {
  static override readonly errorName: string = 'ImageTooLargeError';
  readonly limit: 'bytes' | 'pixels';
  readonly actual: number;
  readonly maximum: number;
  constructor(limit: 'bytes' | 'pixels', actual: number, maximum: number, detail?: string) {
    super(
      'IMAGE_TOO_LARGE',
      `Image too large: ${actual} ${limit} exceeds the limit of ${maximum} ${limit}${detail ? ` (${detail})` : ''}`,
    );
    this.limit = limit;
    this.actual = actual;
    this.maximum = maximum;
  }
}

/** Invalid options passed to a factory or function; names the component and the bad key. */
export class InvalidOptionsError extends FacerecInputError {
  static override readonly errorName: string = 'InvalidOptionsError';
  readonly component: string;
  constructor(component: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_OPTIONS', `${component}: ${message}`, options);
    this.component = component;
  }
}

/** A provider was asked for a model id it does not have. Lists the valid ids. */
export class NoSuchModelError extends FacerecInputError {
  static override readonly errorName: string = 'NoSuchModelError';
  readonly modelId: string;
  readonly modelType: string;
  readonly available: readonly string[];
  /** `message`: in place of the default `No <modelType> model "<modelId>"; available: …`. */
  constructor(modelType: string, modelId: string, available: readonly string[], message?: string) {
    super(
      'NO_SUCH_MODEL',
      message ??
        `No ${modelType} model "${modelId}"; available: ${available.length ? available.join(', ') : '(none)'}`,
    );
    this.modelType = modelType;
    this.modelId = modelId;
    this.available = available;
  }
}

/** A PyTorch checkpoint that cannot be read, or that asks for code the safe unpickler refuses. */
export class CheckpointError extends FacerecInputError {
  static override readonly errorName: string = 'CheckpointError';
  readonly source: string | undefined;
  constructor(message: string, options?: { source?: string; cause?: unknown }) {
    super('INVALID_CHECKPOINT', options?.source ? `${options.source}: ${message}` : message, options);
    this.source = options?.source;
  }
}

/** A model file that could not be obtained, or failed verification. */
export class ModelUnavailableError extends FacerecError {
  static override readonly errorName: string = 'ModelUnavailableError';
  readonly model: string;
  readonly url: string | undefined;
  constructor(model: string, message: string, options?: { url?: string; cause?: unknown }) {
    super('MODEL_UNAVAILABLE', message, options);
    this.model = model;
    this.url = options?.url;
  }
}

/**
 * A registry entry's own `load()` (a plugin's) failed with an error of its own, a file it could not read, say:
 * which model, of which kind, on which provider. Its message carries the cause's (a path, as the plugin wrote it).
 */
export class ModelLoadError extends FacerecError {
  static override readonly errorName: string = 'ModelLoadError';
  readonly provider: string;
  readonly kind: 'detector' | 'embedder';
  readonly modelId: string;
  constructor(provider: string, kind: 'detector' | 'embedder', modelId: string, cause: unknown) {
    super(
      'MODEL_LOAD_FAILED',
      `${provider} ${kind} "${modelId}": its load() failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.provider = provider;
    this.kind = kind;
    this.modelId = modelId;
  }
}

/** A file whose sha256 differs from the manifest's. */
export class IntegrityError extends FacerecError {
  static override readonly errorName: string = 'IntegrityError';
  readonly model: string;
  readonly expected: string;
  readonly actual: string;
  constructor(model: string, expected: string, actual: string, where: string) {
    super(
      'INTEGRITY_MISMATCH',
      `sha256 mismatch for model "${model}" from ${where}: expected ${expected}, got ${actual}`,
    );
    this.model = model;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A model or provider used after `dispose()`. */
export class DisposedError extends FacerecError {
  static override readonly errorName: string = 'DisposedError';
  constructor(what: string) {
    super('DISPOSED', `${what} has been disposed`);
  }
}

/** Input tensors or crops with the wrong shape for a model. */
export class InvalidInputError extends FacerecInputError {
  static override readonly errorName: string = 'InvalidInputError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_INPUT', message, options);
  }
}

/** An error as plain data, to cross a thread or process boundary (`postMessage`, JSON). */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** The facerec code, or `ERROR` for any other error. */
  readonly code: string;
  /** The facerec marker names of the error's classes (see {@link FacerecError.isInstance}); empty for others. */
  readonly markers: readonly string[];
}

/** `error` as {@link SerializedError}: message, code and facerec class markers (no stack, no cause). */
export function serializeError(error: unknown): SerializedError {
  const e = error instanceof Error ? error : new Error(String(error));
  const markers = FacerecError.isInstance(e) ? e[markerKey] : [];
  return { name: e.name, message: e.message, code: FacerecError.isInstance(e) ? e.code : 'ERROR', markers };
}

/**
 * The error a {@link SerializedError} describes, on this side: a facerec error keeps its code and class
 * markers, so `InvalidInputError.isInstance(error)` holds as it did where it was thrown.
 */
export function deserializeError(data: SerializedError): Error {
  if (data.markers.length === 0) {
    const error = new Error(data.message);
    error.name = data.name;
    return error;
  }
  const error = new FacerecError(data.code, data.message);
  error.name = data.name;
  Object.defineProperty(error, markerKey, { value: [...data.markers] });
  return error;
}
