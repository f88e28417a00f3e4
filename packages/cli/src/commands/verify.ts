import {
  createFaceRecognizer,
  type DistanceMetric,
  InvalidOptionsError,
  missingThresholdMessage,
  recommendedThreshold,
} from '@facerec/framework';
import { visibleText } from '@facerec/framework/internal';
import type { Command } from 'commander';
import {
  decodeInput,
  type ImageLimitFlags,
  imageLimitsFlag,
  maxImageBytesOption,
  maxImagePixelsOption,
  stdinTwice,
} from '../images.js';
import { info, round, shownDistance, thresholdFlag } from '../output.js';
import {
  type CliContext,
  embedderOption,
  loadEmbedder,
  metricOption,
  precisionOption,
  providerOption,
  selectProvider,
  weightsOption,
} from '../providers.js';

interface VerifyFlags extends ImageLimitFlags {
  embedder: string;
  weights?: string;
  provider: string;
  metric: DistanceMetric;
  threshold?: string;
  precision?: string;
  json?: boolean;
}

/** `facerec verify <a> <b>`: are the largest faces of two photos the same person? */
export function registerVerifyCommand(program: Command, context: CliContext): void {
  const { registry } = context;
  program
    .command('verify')
    .description(
      "1:1 verification: compare the largest face of each photo at the embedder's recommended threshold (or --threshold)",
    )
    .argument('<a>', 'first photo (JPEG, PNG or WebP)')
    .argument('<b>', 'second photo')
    .addOption(embedderOption(context))
    .addOption(weightsOption('embedder'))
    .addOption(providerOption(context))
    .addOption(metricOption())
    .addOption(precisionOption())
    .addOption(maxImageBytesOption())
    .addOption(maxImagePixelsOption())
    .option(
      '--threshold <t>',
      "same person when the distance is at most this (default: the embedder's recommended)",
    )
    .option(
      '--json',
      'print { verified, distance, threshold, thresholdSource, metric, embedder, precision, faces: [{ image, box, score, faceCount }], warnings }',
    )
    .action(async (a: string, b: string, opts: VerifyFlags) => {
      if (a === '-' && b === '-') throw stdinTwice('verify');
      const threshold = thresholdFlag('verify', opts.threshold);
      const limits = imageLimitsFlag('verify', opts);
      // Before any model loads: without a threshold there is no answer to give.
      const resolved = registry.resolveEmbedder(opts.embedder, { weights: opts.weights });
      const modelId = resolved.description.modelId(resolved.options);
      if (threshold === undefined && !recommendedThreshold(registry, modelId, opts.metric)) {
        throw new InvalidOptionsError(
          'verify',
          `${missingThresholdMessage(registry, modelId, opts.metric)}; pass --threshold`,
        );
      }
      const images = [await decodeInput(a, limits), await decodeInput(b, limits)] as const;
      const provider = await selectProvider(context, opts.provider);
      const embedder = await loadEmbedder(context, provider, opts.embedder, {
        weights: opts.weights,
        precision: opts.precision,
      });
      try {
        const recognizer = await createFaceRecognizer({ provider, embedder, metric: opts.metric });
        try {
          const result = await recognizer.verify(images[0], images[1], {
            ...(threshold === undefined ? {} : { threshold }),
            // Shown in its warnings and its no-face error: a name's control characters escaped, as elsewhere.
            names: [visibleText(a), visibleText(b)],
          });
          for (const warning of result.warnings) info(`warning: ${warning}`);
          if (result.thresholdSource === 'registry')
            info(
              `threshold ${result.threshold}: ${result.embedder}'s recommended ${result.metric} threshold`,
            );
          const faces = result.faces.map((face, i) => ({
            image: i === 0 ? a : b,
            box: face.box.map((v) => round(v, 1)),
            score: round(face.score, 6),
            faceCount: result.faceCounts[i],
          }));
          if (opts.json) {
            const summary = {
              verified: result.verified,
              distance: shownDistance(result.distance, result.threshold, 6),
              threshold: result.threshold,
              thresholdSource: result.thresholdSource,
              metric: result.metric,
              embedder: result.embedder,
              precision: embedder.precision ?? 'fp32',
              faces,
              warnings: result.warnings,
            };
            process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
          } else {
            const verdict = result.verified ? 'same person' : 'different people';
            const relation = result.verified ? '≤' : '>';
            process.stdout.write(
              `${verdict}\t${result.metric} distance ${shownDistance(result.distance, result.threshold)} ${relation} ${result.threshold}\t(${result.embedder})\n`,
            );
          }
        } finally {
          await recognizer.dispose();
        }
      } finally {
        await embedder.dispose();
      }
    });
}
