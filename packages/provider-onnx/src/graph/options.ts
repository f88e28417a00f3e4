import { InvalidOptionsError } from '@facerec/framework';

/** Options shared by the network builders ({@link buildPNet}, {@link buildInceptionResnetV1}, ...). */
export interface BuildGraphOptions {
  /**
   * Provenance written to the model's `metadata_props`, e.g. `{ weights_sha256: '…', weights_url: '…' }`.
   * The builder adds `facerec_architecture` itself.
   */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Where the weights came from (file path or URL), named in every CheckpointError. */
  readonly source?: string;
}

const KNOWN_KEYS: ReadonlySet<string> = new Set(['metadata', 'source']);

/** Rejects unknown keys and non-string metadata, so a typo does not silently drop provenance. */
export function validateBuildOptions(
  component: string,
  options: BuildGraphOptions | undefined,
): BuildGraphOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError(component, 'options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new InvalidOptionsError(component, `unknown option "${key}"; known options: metadata, source`);
    }
  }
  if (options.source !== undefined && typeof options.source !== 'string') {
    throw new InvalidOptionsError(component, 'option "source" must be a string');
  }
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    if (typeof value !== 'string') {
      throw new InvalidOptionsError(component, `metadata "${key}" must be a string, got ${typeof value}`);
    }
  }
  return options;
}
