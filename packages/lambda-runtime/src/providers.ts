import {
  type FaceProvider,
  InvalidOptionsError,
  MODELS,
  type ProviderFactory,
  type ProviderSettings,
  SPECIFICATION_VERSION,
} from '@facerec/framework';
import { importOptionalPackage } from '@facerec/framework/internal';

/**
 * Loads the provider a registry lists under `name` (`onnx`, `tfjs`): imports its package (providers are
 * optional peer dependencies, so only the one asked for is loaded) and calls its `createProvider`. Used by the
 * composition root and the CLI alike.
 *
 * @throws InvalidOptionsError for an unknown name (listing the valid ones), or a provider package that is not
 *   installed (naming it).
 */
export async function loadProvider(name: string, settings: ProviderSettings = {}): Promise<FaceProvider> {
  const description = (settings.registry ?? MODELS).provider(name);
  const module = await importOptionalPackage<{ readonly createProvider?: unknown }>(
    description.packageName,
    (name) => import(name),
    'provider',
    `provider "${name}"`,
    description.installWith,
  );
  if (typeof module.createProvider !== 'function') {
    throw new InvalidOptionsError('provider', `${description.packageName} does not export createProvider()`);
  }
  const provider = (module.createProvider as ProviderFactory)(settings);
  if (provider.specificationVersion !== SPECIFICATION_VERSION) {
    throw new InvalidOptionsError(
      'provider',
      `${description.packageName} implements contract ${String(provider.specificationVersion)}; this runtime needs ${SPECIFICATION_VERSION}`,
    );
  }
  return provider;
}
