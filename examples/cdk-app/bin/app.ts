/**
 * Reference CDK app: one stack holding the facerec pipeline. `npm run synth` / `npx cdk deploy` from this
 * folder, with the aws-cdk CLI version this package pins (see docs/deploy.md). The pipeline builds its image
 * from the repository root and deploys the gallery at `gallery/gallery.json` there, with the embedder that
 * gallery was enrolled with.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  FaceRecognitionPipeline,
  FaceRecognitionPipelineError,
  type FaceRecognitionPipelineProps,
} from '@facerec/cdk';
import { Annotations, App, Errors, Stack, type StackProps } from 'aws-cdk-lib';

/** The repository root: the image's build context, where `calibration` and `modelsMirror` paths start. */
const REPOSITORY_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * The settings this app reads from the CDK context. A key of the context that is none of them, nor the CDK's
 * own (feature flags and lookups hold a colon; `cdk acknowledge` and `cdk cli-telemetry` write two keys without), is warned
 * of at every synth and deploy: a misspelt one is ignored, and the deploy takes that setting's default (the
 * deploy guide's "Settings go in cdk.json"). A warning, not a refusal: a key the CDK adds later must not stop
 * the deploy. An app of your own that reads more keys adds them here.
 */
const SETTINGS = [
  'alarmEmail',
  'architecture',
  'calibration',
  'galleryBucket',
  'modelsMirror',
  'precision',
  'reservedConcurrency',
] as const;
const CDK_KEYS_WITHOUT_COLON = ['acknowledged-issue-numbers', 'cli-telemetry'];

/** Props of {@link FacerecStack}: the pipeline's props plus the usual stack props. */
export interface FacerecStackProps extends StackProps {
  readonly pipeline?: FaceRecognitionPipelineProps;
}

/** A stack holding one {@link FaceRecognitionPipeline}. */
export class FacerecStack extends Stack {
  readonly pipeline: FaceRecognitionPipeline;

  constructor(scope: App, id: string, props: FacerecStackProps = {}) {
    super(scope, id, props);
    // Optional settings, from the "context" of cdk.json (kept: every deploy reads them) or from the command
    // line, `npx cdk deploy -c alarmEmail=you@example.com -c galleryBucket=true …` (that deploy only: a later
    // one without them deploys the defaults again). The calibration folder and the models mirror are relative
    // to the repository root, the image's build context. cdk.json may hold true/false as JSON booleans; -c
    // always gives strings.
    for (const key of Object.keys(this.node.getAllContext())) {
      if (key.includes(':') || [...SETTINGS, ...CDK_KEYS_WITHOUT_COLON].includes(key)) continue;
      Annotations.of(this).addWarningV2(
        'facerec-example:unknownContext',
        `context ${JSON.stringify(key.slice(0, 40))} is not a setting of this app (${SETTINGS.join(', ')}): misspelt, it is ignored and the deploy takes the default`,
      );
    }
    const context = (key: (typeof SETTINGS)[number]) => {
      const value: unknown = this.node.tryGetContext(key);
      return value === undefined || value === null ? undefined : String(value);
    };
    /** A true/false setting; anything else is refused rather than read as the default. */
    const flag = (key: (typeof SETTINGS)[number], values: readonly string[]) => {
      const value = context(key);
      if (value !== undefined && !values.includes(value))
        throw new FaceRecognitionPipelineError([
          `context ${key} must be ${values.join(' or ')}, got "${value.slice(0, 40)}"`,
        ]);
      return value;
    };
    const alarmEmail = context('alarmEmail');
    const architecture = context('architecture') as 'x86_64' | 'arm64' | undefined;
    const galleryBucket = flag('galleryBucket', ['true', 'false']) === 'true';
    const precision = context('precision') as 'fp32' | 'int8' | undefined;
    const calibration = context('calibration');
    // A folder in the build context holding the weights: checked by the construct at synth (not only by the
    // image build, which runs at deploy, minutes later).
    const modelsMirror = context('modelsMirror');
    // false: neither function reserves concurrency (accounts whose Lambda quota is too small to reserve any);
    // true (the default): each reserves its own.
    const reserve = flag('reservedConcurrency', ['true', 'false']) !== 'false';
    this.pipeline = new FaceRecognitionPipeline(this, 'Pipeline', {
      // This checkout, named rather than left to the construct's default (the checkout its own files lie in),
      // which is another folder when @facerec/cdk comes from npm.
      ...(props.pipeline?.image === undefined ? { imageDirectory: REPOSITORY_ROOT } : {}),
      detection: reserve ? {} : { reservedConcurrency: false },
      recognition: { reservedConcurrency: reserve ? 5 : false },
      maxConcurrency: 5,
      ...(alarmEmail ? { alarmEmail } : {}),
      ...(architecture ? { architecture } : {}),
      ...(galleryBucket ? { galleryBucket } : {}),
      ...(precision ? { precision } : {}),
      ...(calibration ? { calibration: path.resolve(REPOSITORY_ROOT, calibration) } : {}),
      ...(modelsMirror ? { buildArgs: { FACEREC_MODELS_MIRROR: modelsMirror } } : {}),
      ...props.pipeline,
    });
  }
}

/**
 * Builds the app; tests call it with their own props (for example a small image directory). Its default App
 * does not synthesize by itself when the process ends (as one run by the CDK CLI does): {@link synthesize} does,
 * once; a second, automatic one would throw again what it said already.
 */
export function createApp(
  props: FacerecStackProps = {},
  app = new App({ autoSynth: false }),
): { app: App; stack: FacerecStack } {
  const stack = new FacerecStack(app, 'Facerec', {
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    ...props,
  });
  return { app, stack };
}

/**
 * Builds the app and synthesizes it; a mistake of the user's is said in one line on stderr, exit code 1, not as
 * a stack: bad props or context (refused as the stack is built), a bad environment added to a function
 * (`addEnvironment`: refused when synth validates).
 */
export function synthesize(build: () => App = () => createApp().app): void {
  try {
    build().synth();
  } catch (error) {
    if (!(error instanceof FaceRecognitionPipelineError) && !Errors.isValidationError(error)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) synthesize();
