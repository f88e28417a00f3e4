/**
 * Reference CDK app: one stack holding the facerec pipeline. `npx cdk synth` / `npx cdk deploy` from this
 * folder (see docs/deploy.md).
 */
import { fileURLToPath } from 'node:url';
import { FaceRecognitionPipeline, type FaceRecognitionPipelineProps } from '@facerec/cdk';
import { App, Stack, type StackProps } from 'aws-cdk-lib';

/** Props of {@link FacerecStack}: the pipeline's props plus the usual stack props. */
export interface FacerecStackProps extends StackProps {
  readonly pipeline?: FaceRecognitionPipelineProps;
}

/** A stack holding one {@link FaceRecognitionPipeline}. */
export class FacerecStack extends Stack {
  readonly pipeline: FaceRecognitionPipeline;

  constructor(scope: App, id: string, props: FacerecStackProps = {}) {
    super(scope, id, props);
    this.pipeline = new FaceRecognitionPipeline(this, 'Pipeline', {
      recognition: { reservedConcurrency: 5 },
      maxConcurrency: 5,
      ...props.pipeline,
    });
  }
}

/** Builds the app; tests call it with their own props (for example a small image directory). */
export function createApp(props: FacerecStackProps = {}, app = new App()): { app: App; stack: FacerecStack } {
  const stack = new FacerecStack(app, 'Facerec', {
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    ...props,
  });
  return { app, stack };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  createApp().app.synth();
}
