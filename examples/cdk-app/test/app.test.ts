import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { writeGalleryFor } from '../../../packages/cdk/test/galleries.js';
import { createApp, synthesize } from '../bin/app.js';

// Staged, never built: a one-line Dockerfile keeps staging fast (the real app uses the repository root).
// Under `scratch`, removed at the end: the build context and the cloud assemblies (see packages/cdk's tests).
const scratch = mkdtempSync(path.join(tmpdir(), 'facerec-cdk-app-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
process.env.CDK_OUTDIR = path.join(scratch, 'cdk.out');
const imageDirectory = path.join(scratch, 'image');
mkdirSync(imageDirectory);
writeFileSync(path.join(imageDirectory, 'Dockerfile'), 'FROM public.ecr.aws/lambda/nodejs:22\n');
await writeGalleryFor(path.join(imageDirectory, 'gallery', 'gallery.json'), 'faceapi-resnet');

describe('example CDK app', () => {
  it('synthesizes the facerec stack', () => {
    const { app, stack } = createApp({ pipeline: { imageDirectory } });
    const assembly = app.synth();
    expect(assembly.getStackByName(stack.stackName).templateFile).toBe('Facerec.template.json');
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::Function', 2);
    template.resourceCountIs('AWS::SQS::Queue', 4);
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM' });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    expect(Object.keys(template.findOutputs('*'))).toHaveLength(3);
    // The gallery's embedder, read at synth.
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FACEREC_EMBEDDER: 'faceapi-resnet' }) },
    });
  });

  it('takes the alarm e-mail and the architecture from the command line (-c key=value)', () => {
    const app = new App({
      autoSynth: false,
      context: { alarmEmail: 'oncall@example.com', architecture: 'arm64' },
    });
    const { stack } = createApp({ pipeline: { imageDirectory } }, app);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    template.allResourcesProperties('AWS::Lambda::Function', { Architectures: ['arm64'] });
  });

  it('takes settings from cdk.json context too, JSON booleans included, and refuses values it does not know', () => {
    // As cdk.json's "context" hands them over: galleryBucket a boolean, reservedConcurrency false. The models
    // mirror is a folder in the build context (the repository; here the test's image directory) that holds
    // the weights.
    const mirror = mkdtempSync(path.join(imageDirectory, '.models-mirror-test-'));
    onTestFinished(() => rmSync(mirror, { recursive: true, force: true }));
    writeFileSync(path.join(mirror, 'pnet.pt'), '');
    const app = new App({
      autoSynth: false,
      context: { galleryBucket: true, reservedConcurrency: false, modelsMirror: path.basename(mirror) },
    });
    const { app: synthApp, stack } = createApp({ pipeline: { imageDirectory } }, app);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 1);
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function')))
      expect(fn.Properties).not.toHaveProperty('ReservedConcurrentExecutions');
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    const manifest = JSON.parse(
      readFileSync(path.join(synthApp.synth().directory, 'Facerec.assets.json'), 'utf8'),
    ) as { dockerImages: Record<string, { source: { dockerBuildArgs: Record<string, string> } }> };
    const [image] = Object.values(manifest.dockerImages);
    expect(image!.source.dockerBuildArgs.FACEREC_MODELS_MIRROR).toBe(path.basename(mirror));
    // A mirror that is not there, or outside the build context, fails synth (not the build, minutes later).
    for (const modelsMirror of ['.nope', '/work/shared/models/upstream', '../outside']) {
      expect(() =>
        createApp({ pipeline: { imageDirectory } }, new App({ autoSynth: false, context: { modelsMirror } })),
      ).toThrow(/buildArgs\.FACEREC_MODELS_MIRROR must be a folder inside imageDirectory/);
    }
    // The same settings as -c gives them (strings).
    const strings = createApp(
      { pipeline: { imageDirectory } },
      new App({ autoSynth: false, context: { galleryBucket: 'true', reservedConcurrency: 'false' } }),
    );
    Template.fromStack(strings.stack).resourceCountIs('AWS::S3::Bucket', 1);
    // A typo is refused, not read as the default.
    expect(() =>
      createApp(
        { pipeline: { imageDirectory } },
        new App({ autoSynth: false, context: { galleryBucket: 'yes' } }),
      ),
    ).toThrow(/context galleryBucket must be true or false, got "yes"/);
    expect(() =>
      createApp(
        { pipeline: { imageDirectory } },
        new App({ autoSynth: false, context: { reservedConcurrency: 3 } }),
      ),
    ).toThrow(/context reservedConcurrency must be true or false, got "3"/);
  });

  it("warns of a context key that is none of its settings (a misspelt one was ignored), not of the CDK's own", () => {
    // cdk.json's own keys (feature flags) and those the CDK CLI adds hold a colon, or are `cdk acknowledge`'s.
    const cdkKeys = {
      '@aws-cdk/core:target-partitions': ['aws'],
      'aws:cdk:version-reporting': true,
      'acknowledged-issue-numbers': [31885],
      'cli-telemetry': false,
    };
    const warnings = (context: Record<string, unknown>) =>
      Annotations.fromStack(
        createApp({ pipeline: { imageDirectory } }, new App({ autoSynth: false, context })).stack,
      )
        .findWarning('*', Match.stringLikeRegexp('is not a setting of this app'))
        .map((w) => w.entry.data);
    expect(warnings({ ...cdkKeys, architecure: 'arm64', galleryBucket: true })).toEqual([
      expect.stringContaining(
        'context "architecure" is not a setting of this app (alarmEmail, architecture, calibration, galleryBucket, modelsMirror, precision, reservedConcurrency): misspelt, it is ignored and the deploy takes the default',
      ),
    ]);
    expect(warnings({ ...cdkKeys, architecture: 'arm64' })).toEqual([]);
  });

  it("says a bad environment added to a function (the deploy guide's addEnvironment) in one line, exit code 1", () => {
    const written: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: string) => {
      written.push(String(chunk));
      return true;
    }) as never);
    try {
      synthesize(() => {
        const { app, stack } = createApp({ pipeline: { imageDirectory } });
        stack.pipeline.recognitionFunction.addEnvironment('FACEREC_THRESHOLD', '5');
        return app;
      });
    } finally {
      stderr.mockRestore();
    }
    const exitCode = process.exitCode;
    process.exitCode = undefined;
    expect([exitCode, written.length]).toEqual([1, 1]);
    expect(written[0]).toContain('FACEREC_THRESHOLD: expected a number above 0 and at most 2');
    expect(written[0]).not.toMatch(/\n\s+at /);
  });

  it('pins the aws-cdk CLI that `npm run synth` and `npx cdk` run', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      devDependencies: Record<string, string>;
      scripts: Record<string, string>;
    };
    expect(manifest.devDependencies['aws-cdk']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(manifest.scripts.synth).toBe('cdk synth');
  });
});
