/**
 * Version of the provider contracts in this package. Implementations declare the version they were written
 * against, so a provider built for a future contract is rejected instead of misbehaving.
 */
export const SPECIFICATION_VERSION = 'v2' as const;

/** The contract version type. */
export type SpecificationVersion = typeof SPECIFICATION_VERSION;
