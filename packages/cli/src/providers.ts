import { InvalidOptionsError, type MtcnnDetector, type MtcnnOptions } from '@facerec/framework';
import { createOnnxProvider } from '@facerec/provider-onnx';

/** What the CLI needs from a provider. */
export interface CliProvider {
  detector(options: MtcnnOptions): MtcnnDetector;
}

/** The providers the CLI can run, by `--provider` name. */
export const CLI_PROVIDERS: Readonly<Record<string, () => CliProvider>> = Object.freeze({
  onnx: () => {
    const provider = createOnnxProvider();
    return { detector: (options) => provider.detector('mtcnn', options) };
  },
});

/** The provider named by `--provider`; an unknown name lists the valid ones. */
export function selectProvider(name: string): CliProvider {
  const factory = CLI_PROVIDERS[name];
  if (!factory) {
    throw new InvalidOptionsError(
      '--provider',
      `unknown provider "${name}"; valid providers: ${Object.keys(CLI_PROVIDERS).join(', ')}`,
    );
  }
  return factory();
}
