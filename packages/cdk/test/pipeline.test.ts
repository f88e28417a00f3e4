import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PIPELINE_METRICS } from '@facerec/framework/registry';
import { App, Aspects, type CfnResource, Annotations as CoreAnnotations, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FaceRecognitionPipeline,
  FaceRecognitionPipelineError,
  type FaceRecognitionPipelineProps,
  MAX_RECEIVE_COUNT,
  MAX_REPLY_QUEUES,
  PIPELINE_DEFAULTS,
  PIPELINE_WARNINGS,
  resolvePipelineProps,
  VISIBILITY_TIMEOUT_FACTOR,
} from '../src/index.js';
import {
  baseImageAgeDays,
  KNOWN_PROPS,
  RECOGNITION_START_FAILURE,
  START_FAILURE_METRIC,
} from '../src/pipeline.js';
import { writeGalleryFor } from './galleries.js';

// A tiny build context: the asset is staged (copied and hashed), never built, so any Dockerfile will do and
// staging stays fast instead of copying the whole repository.
// Everything this file writes goes under `scratch`, removed at the end: the build context, and the cloud
// assemblies (an App without `outdir` makes a new temporary folder per synthesis and leaves it behind).
const scratch = mkdtempSync(path.join(tmpdir(), 'facerec-cdk-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
process.env.CDK_OUTDIR = path.join(scratch, 'cdk.out');
// Every App here is made with autoSynth off: with CDK_OUTDIR set, an App synthesizes again when its process is
// about to exit, after `scratch` is gone (an uncaught ENOENT that failed a run).
const imageDirectory = path.join(scratch, 'image');
mkdirSync(imageDirectory);
writeFileSync(path.join(imageDirectory, 'Dockerfile'), 'FROM public.ecr.aws/lambda/nodejs:22\n');
// The default gallery (gallery/gallery.json in the build context), enrolled with the registry's default
// embedder, and galleries of other embedders for the tests that deploy those.
await writeGalleryFor(path.join(imageDirectory, 'gallery', 'gallery.json'), 'inception-resnet-v1');
const faceapiGallery = await writeGalleryFor(
  path.join(imageDirectory, 'gallery', 'faceapi.json'),
  'faceapi-resnet',
);
const casiaGallery = await writeGalleryFor(
  path.join(imageDirectory, 'gallery', 'casia.json'),
  'inception-resnet-v1',
  'casia-webface',
);

type Json = Record<string, unknown>;

/** Synthesizes a pipeline; `extend` adds to the stack first (the template is read once). */
function synth(
  props: FaceRecognitionPipelineProps = {},
  nag = false,
  extend?: (pipeline: FaceRecognitionPipeline, stack: Stack) => void,
) {
  const app = new App({ autoSynth: false });
  const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
  if (nag) {
    Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
    Aspects.of(app).add(new ServerlessChecks({ verbose: true }));
  }
  const pipeline = new FaceRecognitionPipeline(stack, 'Pipeline', { imageDirectory, ...props });
  extend?.(pipeline, stack);
  return { app, stack, pipeline, template: Template.fromStack(stack) };
}

/** The Docker image assets of a stack, as its asset manifest hands them to the publisher (`cdk deploy`). */
function dockerImageSources(app: App, stackName = 'Test'): Json[] {
  const file = path.join(app.synth().directory, `${stackName}.assets.json`);
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as {
    dockerImages?: Record<string, { source: Json }>;
  };
  return Object.values(manifest.dockerImages ?? {}).map((image) => image.source);
}

const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

/** Every statement of the inline policies attached to a role. */
function statementsOf(template: Template, roleId: string): Json[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => JSON.stringify((p.Properties as Json).Roles).includes(roleId))
    .flatMap((p) => ((p.Properties as Json).PolicyDocument as { Statement: Json[] }).Statement);
}
const actionsOf = (s: Json) => [s.Action].flat() as string[];
const resourcesOf = (s: Json) => [s.Resource].flat().map((r) => JSON.stringify(r));

it("documents every prop in docs/deploy.md's props table", () => {
  const guide = readFileSync(path.join(import.meta.dirname, '../../../docs/deploy.md'), 'utf8');
  const table = guide.split('\n').filter((line) => line.startsWith('| `'));
  const documented = new Set(
    table.flatMap((row) => [...row.split('|')[1]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!)),
  );
  expect([...KNOWN_PROPS].filter((prop) => !documented.has(prop))).toEqual([]);
});

describe('FaceRecognitionPipeline', () => {
  const { stack, pipeline, template } = synth();
  const ids = {
    detection: logicalId(stack, pipeline.detectionFunction),
    recognition: logicalId(stack, pipeline.recognitionFunction),
    request: logicalId(stack, pipeline.requestQueue),
    response: logicalId(stack, pipeline.responseQueue),
    requestDlq: logicalId(stack, pipeline.requestDeadLetterQueue),
    responseDlq: logicalId(stack, pipeline.responseDeadLetterQueue),
    detectionRole: logicalId(stack, pipeline.detectionFunction.role as never),
    recognitionRole: logicalId(stack, pipeline.recognitionFunction.role as never),
  };

  it('builds two x86_64 image functions from one image asset with different commands', () => {
    const fns = template.findResources('AWS::Lambda::Function');
    expect(Object.keys(fns)).toHaveLength(2);
    const det = fns[ids.detection]!.Properties as Json;
    const rec = fns[ids.recognition]!.Properties as Json;
    for (const fn of [det, rec]) {
      expect(fn.PackageType).toBe('Image');
      expect(fn.Architectures).toEqual(['x86_64']);
      expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
    }
    expect(JSON.stringify((det.Code as Json).ImageUri)).toBe(JSON.stringify((rec.Code as Json).ImageUri));
    expect(det.ImageConfig).toEqual({ Command: ['packages/lambda-runtime/dist/lambda/detection.handler'] });
    expect(rec.ImageConfig).toEqual({ Command: ['packages/lambda-runtime/dist/lambda/recognition.handler'] });
    expect([det.MemorySize, det.Timeout, det.ReservedConcurrentExecutions]).toEqual([2048, 30, 10]);
    expect([rec.MemorySize, rec.Timeout, rec.ReservedConcurrentExecutions]).toEqual([3008, 60, 5]);
  });

  it('configures both functions through the runtime environment variables', () => {
    const variables = (id: string) =>
      (
        (template.findResources('AWS::Lambda::Function')[id]!.Properties as Json).Environment as {
          Variables: Json;
        }
      ).Variables;
    for (const id of [ids.detection, ids.recognition]) {
      expect(variables(id)).toMatchObject({
        FACEREC_PROVIDER: 'onnx',
        FACEREC_EMBEDDER: 'inception-resnet-v1',
        FACEREC_CACHE_DIR: '/var/task/facerec/models',
        FACEREC_REQUEST_QUEUE_URL: { Ref: ids.request },
        FACEREC_RESPONSE_QUEUE_URL: { Ref: ids.response },
      });
      // No embedder or weights prop: the gallery's (enrolled with the registry's default, VGGFace2 weights).
      expect(variables(id)).toHaveProperty('FACEREC_WEIGHTS', 'vggface2');
    }
    // The gallery and the precision go to recognition, the function that reads them.
    expect(variables(ids.recognition)).toMatchObject({
      FACEREC_GALLERY: '/var/task/facerec/gallery.json',
      FACEREC_PRECISION: 'fp32',
    });
    for (const name of ['FACEREC_GALLERY', 'FACEREC_PRECISION'])
      expect(Object.keys(variables(ids.detection))).not.toContain(name);
  });

  it('gives the detection function an AWS_IAM Function URL by default', () => {
    template.resourceCountIs('AWS::Lambda::Url', 1);
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'AWS_IAM',
      TargetFunctionArn: { 'Fn::GetAtt': [ids.detection, 'Arn'] },
    });
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toHaveLength(0);
  });

  it('encrypts every queue, enforces TLS and redrives to a DLQ after 5 receives', () => {
    const queues = template.findResources('AWS::SQS::Queue');
    expect(Object.keys(queues)).toHaveLength(4);
    for (const q of Object.values(queues)) expect((q.Properties as Json).SqsManagedSseEnabled).toBe(true);
    for (const [queue, dlq] of [
      [ids.request, ids.requestDlq],
      [ids.response, ids.responseDlq],
    ] as const) {
      expect((queues[queue]!.Properties as Json).RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] },
        maxReceiveCount: MAX_RECEIVE_COUNT,
      });
    }
    expect(MAX_RECEIVE_COUNT).toBe(5);
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy'));
    const covered = policies.flatMap((p) =>
      (p.Properties as { Queues: { Ref: string }[] }).Queues.map((q) => q.Ref),
    );
    expect(covered.sort()).toEqual(Object.keys(queues).sort());
    for (const p of policies) {
      expect((p.Properties as Json).PolicyDocument).toMatchObject({
        Statement: [
          {
            Effect: 'Deny',
            Action: 'sqs:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ],
      });
    }
  });

  it('sets the request queue visibility timeout to 6× the recognition timeout plus the batching window', () => {
    const queues = template.findResources('AWS::SQS::Queue');
    const visibility = (queues[ids.request]!.Properties as Json).VisibilityTimeout as number;
    expect(visibility).toBe(
      VISIBILITY_TIMEOUT_FACTOR * PIPELINE_DEFAULTS.recognition.timeoutSeconds +
        PIPELINE_DEFAULTS.maxBatchingWindowSeconds,
    );
    const custom = synth({
      recognition: { timeoutSeconds: 120, reservedConcurrency: 4 },
      maxBatchingWindowSeconds: 300,
    });
    custom.template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 1020,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 5 }),
    });
  });

  it('triggers recognition from the request queue with partial batch failures and capped concurrency', () => {
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [ids.request, 'Arn'] },
      FunctionName: { Ref: ids.recognition },
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    const custom = synth({
      batchSize: 50,
      maxBatchingWindowSeconds: 5,
      recognition: { reservedConcurrency: 20 },
      maxConcurrency: 12,
    });
    custom.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 50,
      MaximumBatchingWindowInSeconds: 5,
      ScalingConfig: { MaximumConcurrency: 12 },
    });
    const fn = Object.values(custom.template.findResources('AWS::Lambda::Function')).find(
      (f) => (f.Properties as Json).ReservedConcurrentExecutions === 20,
    );
    expect(fn).toBeDefined();
  });

  it('lets detection only send, to the request and response queues', () => {
    const sqs = statementsOf(template, ids.detectionRole).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('sqs:')),
    );
    expect(sqs).toHaveLength(2);
    for (const s of sqs) {
      expect(s.Effect).toBe('Allow');
      expect(
        actionsOf(s).every(
          (a) => a.startsWith('sqs:SendMessage') || a === 'sqs:GetQueueAttributes' || a === 'sqs:GetQueueUrl',
        ),
      ).toBe(true);
      expect(actionsOf(s)).toContain('sqs:SendMessage');
    }
    expect(sqs.flatMap(resourcesOf).sort()).toEqual(
      [ids.request, ids.response].map((id) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] })).sort(),
    );
    expectNoWildcards(statementsOf(template, ids.detectionRole));
  });

  it('lets each function write to its own log group only, without the managed AWSLambdaBasicExecutionRole', () => {
    for (const [role, fn] of [
      [ids.detectionRole, pipeline.detectionFunction],
      [ids.recognitionRole, pipeline.recognitionFunction],
    ] as const) {
      expect(template.toJSON().Resources[role].Properties.ManagedPolicyArns).toBeUndefined();
      const logs = statementsOf(template, role).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('logs:')),
      );
      expect(logs.flatMap(actionsOf).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      const group = logicalId(stack, fn.logGroup as never);
      expect(logs.flatMap(resourcesOf)).toEqual([JSON.stringify({ 'Fn::GetAtt': [group, 'Arn'] })]);
    }
  });

  it('lets recognition only consume the request queue and send to the response queue', () => {
    const sqs = statementsOf(template, ids.recognitionRole).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('sqs:')),
    );
    const on = (id: string) =>
      sqs.filter((s) => resourcesOf(s).includes(JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] })));
    expect(sqs.flatMap(resourcesOf).every((r) => r.includes(ids.request) || r.includes(ids.response))).toBe(
      true,
    );
    expect(new Set(on(ids.request).flatMap(actionsOf))).toEqual(
      new Set([
        'sqs:ReceiveMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueUrl',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
      ]),
    );
    expect(
      on(ids.response)
        .flatMap(actionsOf)
        .every(
          (a) => a.startsWith('sqs:SendMessage') || a === 'sqs:GetQueueAttributes' || a === 'sqs:GetQueueUrl',
        ),
    ).toBe(true);
    expect(on(ids.response).flatMap(actionsOf)).toContain('sqs:SendMessage');
    expect(
      sqs.flatMap(resourcesOf).some((r) => r.includes(ids.requestDlq) || r.includes(ids.responseDlq)),
    ).toBe(false);
    expectNoWildcards(statementsOf(template, ids.recognitionRole));
  });

  it('alarms on DLQ depth, request backlog age, uncollected answers, function errors, Function URL 5xx and recognition start failures', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as Json,
    );
    expect(alarms).toHaveLength(10);
    const find = (metric: string, dimension: string) =>
      alarms.filter(
        (a) => a.MetricName === metric && JSON.stringify(a.Dimensions).includes(`"${dimension}"`),
      );
    for (const dlq of [ids.requestDlq, ids.responseDlq]) {
      expect(find('ApproximateNumberOfMessagesVisible', dlq)[0]).toMatchObject({
        Namespace: 'AWS/SQS',
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
      });
    }
    expect(find('ApproximateAgeOfOldestMessage', ids.request)[0]).toMatchObject({
      Namespace: 'AWS/SQS',
      Threshold: 300,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    // Answers no client collects: they would expire unseen after the retention.
    expect(find('ApproximateAgeOfOldestMessage', ids.response)).toHaveLength(1);
    expect(find('ApproximateAgeOfOldestMessage', ids.response)[0]).toMatchObject({
      Namespace: 'AWS/SQS',
      Statistic: 'Maximum',
      Threshold: 900,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(pipeline.uncollectedReplyAlarms).toEqual({});
    for (const fn of [ids.detection, ids.recognition]) {
      expect(find('Errors', fn)[0]).toMatchObject({ Namespace: 'AWS/Lambda', Threshold: 1 });
    }
    // Failures detection answers itself (503, 500) are no Lambda errors: the Function URL's 5xx count.
    expect(find('Url5xxCount', ids.detection)).toHaveLength(1);
    expect(find('Url5xxCount', ids.detection)[0]).toMatchObject({
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: ids.detection } }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    // Recognition that failed to start hands its records back and logs a line: a metric filter counts it.
    const recognitionLogs = logicalId(stack, pipeline.recognitionFunction.logGroup as never);
    template.resourceCountIs('AWS::Logs::MetricFilter', 1);
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: recognitionLogs },
      FilterPattern: `{ $.message = "${RECOGNITION_START_FAILURE}" }`,
      MetricTransformations: [
        {
          MetricNamespace: START_FAILURE_METRIC.namespace,
          MetricName: START_FAILURE_METRIC.metricName,
          MetricValue: '1',
          Dimensions: [{ Key: 'FunctionName', Value: '$.function_name' }],
          Unit: 'Count',
        },
      ],
    });
    expect(find(START_FAILURE_METRIC.metricName, ids.recognition)[0]).toMatchObject({
      Namespace: START_FAILURE_METRIC.namespace,
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: ids.recognition } }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(Object.keys(pipeline.alarms).sort()).toEqual(
      [
        'detectionErrors',
        'detectionUrl5xx',
        'recognitionErrors',
        'recognitionStartFailures',
        'requestDlqDepth',
        'requestQueueAge',
        'uncollectedAnswers',
        'responseDlqDepth',
        'latency',
        'detectionThrottles',
      ].sort(),
    );
    // Throttled frames: the client got 429.
    expect(find('Throttles', ids.detection)[0]).toMatchObject({
      Namespace: 'AWS/Lambda',
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    // Latency: the metrics the Lambda entries publish, by the names and dimensions they write them with.
    const latency = alarms.filter((a) => a.Metrics !== undefined);
    expect(latency).toHaveLength(1);
    expect(latency[0]).toMatchObject({
      Threshold: 2000,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    const queries = latency[0]!.Metrics as Json[];
    expect(queries.find((q) => q.ReturnData !== false)).toMatchObject({
      Expression: 'FILL(detection, 0) + FILL(answer, 0)',
    });
    const stat = (id: string) => (queries.find((q) => q.Id === id) as { MetricStat: Json }).MetricStat;
    for (const [id, fn, { service }, metricName] of [
      ['detection', ids.detection, PIPELINE_METRICS.detection, PIPELINE_METRICS.detection.frameLatency],
      ['answer', ids.recognition, PIPELINE_METRICS.recognition, PIPELINE_METRICS.recognition.answerLatency],
    ] as const) {
      expect(stat(id)).toEqual({
        Metric: {
          Namespace: PIPELINE_METRICS.namespace,
          MetricName: metricName,
          Dimensions: [
            { Name: 'FunctionName', Value: { Ref: fn } },
            { Name: 'service', Value: service },
          ],
        },
        Period: 300,
        Stat: 'Average',
      });
    }
    // Every alarm notifies the alarm topic when it fires and when it clears.
    const topic = logicalId(stack, pipeline.alarmTopic as never);
    for (const a of alarms) {
      expect(a.AlarmActions).toEqual([{ Ref: topic }]);
      expect(a.OKActions).toEqual([{ Ref: topic }]);
    }
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    const custom = synth({
      alarms: {
        requestQueueAgeSeconds: 60,
        uncollectedAnswerAgeSeconds: 120,
        functionErrors: 3,
        dlqDepth: 2,
        functionUrl5xx: 10,
        latencyMs: 1500,
        detectionThrottles: 5,
      },
      alarmEmail: 'oncall@example.com',
    });
    custom.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    custom.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: 60,
    });
    custom.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: 120,
    });
    custom.template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Threshold: 3 });
    custom.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Url5xxCount',
      Threshold: 10,
    });
    custom.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 2,
    });
    custom.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Throttles',
      Threshold: 5,
    });
    custom.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.anyValue(),
      Threshold: 1500,
    });
  });

  it('draws a dashboard of the metrics the Lambda entries publish, the queues, the functions and every alarm', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    expect(pipeline.dashboard).toBeDefined();
    const body = JSON.stringify(
      Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties!.DashboardBody,
    );
    for (const name of [
      ...Object.values(PIPELINE_METRICS.detection),
      ...Object.values(PIPELINE_METRICS.recognition),
    ]) {
      if (name === 'detection' || name === 'recognition') continue; // the service names
      expect(body).toContain(`\\"${name}\\"`);
    }
    // CloudFormation joins the body with the resources' names: with placeholders for those, it is JSON that
    // names every widget's metrics.
    const join = (
      Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties!.DashboardBody as {
        'Fn::Join': [string, unknown[]];
      }
    )['Fn::Join'];
    const resolved = JSON.parse(
      join[1].map((part) => (typeof part === 'string' ? part : 'X')).join(join[0]),
    ) as {
      widgets: { type: string; properties: { metrics?: unknown[]; alarms?: unknown[] } }[];
    };
    expect(resolved.widgets.map((w) => w.type)).toEqual([
      'alarm',
      'metric',
      'metric',
      'metric',
      'metric',
      'metric',
    ]);
    expect(resolved.widgets[0]!.properties.alarms).toHaveLength(Object.keys(pipeline.alarms).length);
    expect(body).toContain('ApproximateAgeOfOldestMessage');
    expect(body).toContain('ConcurrentExecutions');
    // The alarm status widget lists every one.
    for (const alarm of Object.values(pipeline.alarms)) {
      expect(body).toContain(stack.getLogicalId(alarm.node.defaultChild as never));
    }
    expect(synth({ dashboard: false }).template.findResources('AWS::CloudWatch::Dashboard')).toEqual({});
  });

  it('counts the log line the recognition entry writes when it failed to start', () => {
    const entry = readFileSync(
      path.join(import.meta.dirname, '../../lambda-runtime/src/lambda/functions.ts'),
      'utf8',
    );
    expect(entry).toContain(`logger.error('${RECOGNITION_START_FAILURE}'`);
  });

  it('keeps the gallery in a versioned, encrypted, private bucket when asked, readable by recognition only', () => {
    template.resourceCountIs('AWS::S3::Bucket', 0);
    const withBucket = synth({ galleryBucket: true, galleryRefreshSeconds: 30 }, true);
    const t = withBucket.template;
    const bucketId = logicalId(withBucket.stack, withBucket.pipeline.galleryBucket!);
    t.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        VersioningConfiguration: { Status: 'Enabled' },
        // A removed person's embeddings leave the old versions after 30 days.
        LifecycleConfiguration: {
          Rules: [
            {
              Id: 'ExpireReplacedGalleryVersions',
              NoncurrentVersionExpiration: { NoncurrentDays: 30 },
              Status: 'Enabled',
            },
          ],
        },
        BucketEncryption: Match.anyValue(),
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
      }),
    });
    const fns = t.findResources('AWS::Lambda::Function');
    const envOf = (construct: { node: { defaultChild?: unknown } }) =>
      ((fns[logicalId(withBucket.stack, construct)]!.Properties as Json).Environment as { Variables: Json })
        .Variables;
    expect(JSON.stringify(envOf(withBucket.pipeline.recognitionFunction).FACEREC_GALLERY)).toContain(
      bucketId,
    );
    expect(envOf(withBucket.pipeline.recognitionFunction).FACEREC_GALLERY_REFRESH_SECONDS).toBe('30');
    const s3Statements = (fn: { role?: unknown }) =>
      statementsOf(t, logicalId(withBucket.stack, fn.role as never)).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('s3:')),
      );
    expect(s3Statements(withBucket.pipeline.detectionFunction)).toEqual([]);
    const actions = s3Statements(withBucket.pipeline.recognitionFunction).flatMap(actionsOf).sort();
    expect(actions).toEqual(['s3:GetObject', 's3:ListBucket']);
    const annotations = Annotations.fromStack(withBucket.stack);
    const findings = [
      ...annotations.findError('*', Match.stringLikeRegexp('(AwsSolutions|Serverless)-.*')),
      ...annotations.findWarning('*', Match.stringLikeRegexp('(AwsSolutions|Serverless)-.*')),
    ].map((f) => `${f.id}: ${String(f.entry.data).split('\n')[0]}`);
    expect(findings).toEqual([]);
    expect(() => synth({ galleryBucket: true, galleryRefreshSeconds: 0 })).toThrow(/galleryRefreshSeconds/);
    synth({ galleryBucket: true, galleryVersionRetentionDays: 7 }).template.hasResourceProperties(
      'AWS::S3::Bucket',
      {
        LifecycleConfiguration: {
          Rules: [Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 7 } })],
        },
      },
    );
    expect(() => synth({ galleryBucket: true, galleryVersionRetentionDays: 0 })).toThrow(
      /galleryVersionRetentionDays must be an integer in \[1, 3650\], got 0/,
    );
  });

  it('gives recognition a shared idempotency table (TTL, least privilege), and detection none', () => {
    const tableId = logicalId(stack, pipeline.idempotencyTable);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
    });
    const fns = template.findResources('AWS::Lambda::Function');
    const env = (id: string) => ((fns[id]!.Properties as Json).Environment as { Variables: Json }).Variables;
    expect(env(ids.recognition).FACEREC_IDEMPOTENCY_TABLE).toEqual({ Ref: tableId });
    expect(env(ids.detection)).not.toHaveProperty('FACEREC_IDEMPOTENCY_TABLE');
    const dynamo = (role: string) =>
      statementsOf(template, role).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    expect(dynamo(ids.detectionRole)).toEqual([]);
    const [grant] = dynamo(ids.recognitionRole);
    expect(actionsOf(grant!).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(resourcesOf(grant!).every((r) => r.includes(tableId))).toBe(true);
  });

  it('lets a caller be granted the two actions an AWS_IAM Function URL needs (functionUrl.grantInvokeUrl)', () => {
    // What the deploy guide tells callers: lambda:InvokeFunctionUrl and, since October 2025,
    // lambda:InvokeFunction with lambda:InvokedViaFunctionUrl.
    let caller: iam.Role | undefined;
    const {
      stack: s,
      pipeline: p,
      template: t,
    } = synth({}, false, (pipeline, stack) => {
      caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
      pipeline.functionUrl.grantInvokeUrl(caller);
    });
    const detection = { 'Fn::GetAtt': [logicalId(s, p.detectionFunction), 'Arn'] };
    expect(statementsOf(t, logicalId(s, caller as never))).toEqual([
      {
        Action: 'lambda:InvokeFunctionUrl',
        Condition: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
        Effect: 'Allow',
        Resource: detection,
      },
      {
        Action: 'lambda:InvokeFunction',
        Condition: { Bool: { 'lambda:InvokedViaFunctionUrl': true } },
        Effect: 'Allow',
        Resource: detection,
      },
    ]);
  });

  it('takes runtime settings through addEnvironment on either function, that function only', () => {
    const {
      stack: s,
      pipeline: p,
      template: t,
    } = synth({}, false, (pipeline) => {
      pipeline.recognitionFunction.addEnvironment('FACEREC_THRESHOLD', '0.9');
      pipeline.detectionFunction.addEnvironment('FACEREC_MIN_FACE_SIZE', '40');
    });
    const fns = t.findResources('AWS::Lambda::Function');
    const env = (fn: { node: { defaultChild?: unknown } }) =>
      ((fns[logicalId(s, fn)]!.Properties as Json).Environment as { Variables: Json }).Variables;
    expect(env(p.recognitionFunction)).toMatchObject({ FACEREC_THRESHOLD: '0.9' });
    expect(env(p.recognitionFunction)).not.toHaveProperty('FACEREC_MIN_FACE_SIZE');
    expect(env(p.detectionFunction)).toMatchObject({ FACEREC_MIN_FACE_SIZE: '40' });
    expect(env(p.detectionFunction)).not.toHaveProperty('FACEREC_THRESHOLD');
  });

  it("refuses at synth an environment the functions would refuse at start (addEnvironment's values and names)", () => {
    const refused = (extend: (pipeline: FaceRecognitionPipeline) => void) => {
      try {
        synth({}, false, extend);
      } catch (error) {
        return (error as Error).message;
      }
      return 'synthesized';
    };
    // Each set alone on one function (d: detection, r: recognition), and what synth says of it.
    const cases: [fn: 'd' | 'r', name: string, value: string, said: string | RegExp][] = [
      ['r', 'FACEREC_THRESHOLD', '5', 'FACEREC_THRESHOLD: expected a number above 0 and at most 2'],
      [
        'd',
        'FACEREC_MAX_IMAGE_PIXELS',
        'abc',
        'FACEREC_MAX_IMAGE_PIXELS: expected a whole number from 1024 to 100000000',
      ],
      [
        'r',
        'FACEREC_TRESHOLD',
        '0.5',
        'FACEREC_TRESHOLD is not a variable facerec reads (did you mean FACEREC_THRESHOLD?)',
      ],
      // Replacing what the construct set: an embedder the registry does not know, a precision the image lacks.
      [
        'd',
        'FACEREC_EMBEDDER',
        'facenet',
        /FACEREC_EMBEDDER: "facenet" is not one of inception-resnet-v1, faceapi-resnet/,
      ],
      [
        'r',
        'FACEREC_PRECISION',
        'int8',
        'FACEREC_PRECISION is set by the construct from its props, and was changed afterwards',
      ],
      // The alarms and the dashboard read the pipeline's namespace, not this one.
      [
        'r',
        'POWERTOOLS_METRICS_NAMESPACE',
        'mine',
        'POWERTOOLS_METRICS_NAMESPACE names another namespace than "facerec", the one the pipeline\'s alarms and dashboard read',
      ],
    ];
    for (const [fn, name, value, said] of cases) {
      const message = refused((pipeline) =>
        (fn === 'd' ? pipeline.detectionFunction : pipeline.recognitionFunction).addEnvironment(name, value),
      );
      expect(message).toContain(`the ${fn === 'd' ? 'detection' : 'recognition'} function's environment: `);
      expect(message).toMatch(said);
    }
    // Empty reads as unset: the entries take the pipeline's namespace.
    expect(
      refused((pipeline) => pipeline.recognitionFunction.addEnvironment('POWERTOOLS_METRICS_NAMESPACE', '')),
    ).toBe('synthesized');
    // A variable only the other function reads changes nothing there: a warning, synth goes on.
    const unread = synth({}, false, (pipeline) => {
      pipeline.detectionFunction.addEnvironment('FACEREC_THRESHOLD', '0.5');
      pipeline.detectionFunction.addEnvironment('FACEREC_GALLERY', '/opt/other.json');
      pipeline.recognitionFunction.addEnvironment('FACEREC_MIN_FACE_SIZE', '40');
    });
    const warned = (text: string) =>
      Annotations.fromStack(unread.stack).findWarning('*', Match.stringLikeRegexp(text));
    expect(
      warned(
        'FACEREC_THRESHOLD is set on the detection function, and only the recognition function reads it',
      ),
    ).toHaveLength(1);
    // The construct sets the gallery on recognition alone: set on detection by the app, it is the app's.
    expect(
      warned('FACEREC_GALLERY is set on the detection function, and only the recognition function reads it'),
    ).toHaveLength(1);
    expect(
      warned(
        'FACEREC_MIN_FACE_SIZE is set on the recognition function, and only the detection function reads it',
      ),
    ).toHaveLength(1);
    // Resources renamed after construction (a kept logical id) change no value the props chose.
    expect(
      refused((pipeline) =>
        (pipeline.requestQueue.node.defaultChild as CfnResource).overrideLogicalId('Requests'),
      ),
    ).toBe('synthesized');
    // Values filled in at deploy (queue URLs, the table) pass as such; good values pass.
    expect(
      refused((pipeline) => {
        pipeline.recognitionFunction.addEnvironment('FACEREC_THRESHOLD', '0.9');
        pipeline.detectionFunction.addEnvironment('FACEREC_MAX_IMAGE_PIXELS', '12000000');
      }),
    ).toBe('synthesized');
  });

  it('reserves no concurrency when asked (reservedConcurrency: false), capping recognition at 5 SQS invocations', () => {
    const none = synth({
      detection: { reservedConcurrency: false },
      recognition: { reservedConcurrency: false },
    });
    for (const f of Object.values(none.template.findResources('AWS::Lambda::Function')))
      expect(f.Properties).not.toHaveProperty('ReservedConcurrentExecutions');
    none.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: PIPELINE_DEFAULTS.recognition.reservedConcurrency },
    });
    synth({
      recognition: { reservedConcurrency: false },
      maxConcurrency: 50,
    }).template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 50 },
    });
    // Detection may be reserved 1 (a Function URL has no event source to outrun it).
    const one = synth({ detection: { reservedConcurrency: 1 }, recognition: { reservedConcurrency: 2 } });
    one.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    expect(
      Object.values(one.template.findResources('AWS::Lambda::Function'))
        .map((f) => (f.Properties as Json).ReservedConcurrentExecutions)
        .sort(),
    ).toEqual([1, 2]);
  });

  it('outputs the Function URL and both queue URLs and exposes them as properties', () => {
    const outputs = Object.values(template.findOutputs('*')).map((o) => JSON.stringify(o.Value));
    expect(outputs).toContain(
      JSON.stringify({ 'Fn::GetAtt': [logicalId(stack, pipeline.functionUrl), 'FunctionUrl'] }),
    );
    expect(outputs).toContain(JSON.stringify({ Ref: ids.request }));
    expect(outputs).toContain(JSON.stringify({ Ref: ids.response }));
    expect(stack.resolve(pipeline.url)).toEqual({
      'Fn::GetAtt': [logicalId(stack, pipeline.functionUrl), 'FunctionUrl'],
    });
    expect(stack.resolve(pipeline.requestQueueUrl)).toEqual({ Ref: ids.request });
    expect(stack.resolve(pipeline.responseQueueUrl)).toEqual({ Ref: ids.response });
  });

  it('passes provider, embedder and weights to the functions and the image build', () => {
    const custom = synth({
      provider: 'tfjs',
      embedder: 'faceapi-resnet',
      gallery: faceapiGallery,
      galleryPath: '/opt/g.json',
    });
    custom.template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ FACEREC_PROVIDER: 'tfjs', FACEREC_EMBEDDER: 'faceapi-resnet' }),
      },
    });
    custom.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FACEREC_GALLERY: '/opt/g.json' }) },
    });
    // face-api's net takes no weights: none are passed on.
    custom.template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FACEREC_WEIGHTS: Match.absent() }) },
    });
    const irv1 = synth({ weights: 'casia-webface', gallery: casiaGallery });
    irv1.template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          FACEREC_EMBEDDER: 'inception-resnet-v1',
          FACEREC_WEIGHTS: 'casia-webface',
        }),
      },
    });
  });

  it("runs the gallery's embedder when none is named, and builds the image with that gallery", () => {
    const derived = synth({ gallery: faceapiGallery });
    derived.template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FACEREC_EMBEDDER: 'faceapi-resnet' }) },
    });
    expect(dockerImageSources(derived.app)[0]?.dockerBuildArgs).toEqual({
      PROVIDER: 'onnx',
      EMBEDDER: 'faceapi-resnet',
      GALLERY: 'gallery/faceapi.json',
    });
    const casia = synth({ gallery: casiaGallery });
    casia.template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FACEREC_WEIGHTS: 'casia-webface' }) },
    });
  });

  it('runs the int8 embedder when asked: calibrated in the image build or from shipped ranges, FACEREC_PRECISION in recognition', () => {
    mkdirSync(path.join(imageDirectory, 'calibration'), { recursive: true });
    const int8 = synth({
      gallery: faceapiGallery,
      precision: 'int8',
      calibration: path.join(imageDirectory, 'calibration'),
    });
    int8.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FACEREC_PRECISION: 'int8' }) },
    });
    expect(dockerImageSources(int8.app)[0]?.dockerBuildArgs).toEqual({
      PROVIDER: 'onnx',
      EMBEDDER: 'faceapi-resnet',
      GALLERY: 'gallery/faceapi.json',
      PRECISION: 'int8',
      CALIBRATION: 'calibration',
    });
    synth().template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FACEREC_PRECISION: 'fp32' }) },
    });
    // faceapi-resnet's int8 ranges ship: no calibration folder needed, none passed to the build.
    const shipped = synth({ gallery: faceapiGallery, precision: 'int8' });
    expect(dockerImageSources(shipped.app)[0]?.dockerBuildArgs).toEqual({
      PROVIDER: 'onnx',
      EMBEDDER: 'faceapi-resnet',
      GALLERY: 'gallery/faceapi.json',
      PRECISION: 'int8',
    });
    // InceptionResnetV1 ships none (the default embedder here).
    expect(() => synth({ precision: 'int8' })).toThrow(
      /precision "int8" needs calibration for inception-resnet-v1 \(no int8 ranges ship for it\)/,
    );
    expect(() => synth({ precision: 'int8', calibration: tmpdir() })).toThrow(
      /must lie inside imageDirectory/,
    );
    expect(() => synth({ precision: 'int8', calibration: path.join(imageDirectory, 'nope') })).toThrow(
      /calibration: .*nope does not exist/,
    );
    expect(() =>
      synth({
        provider: 'tfjs',
        gallery: faceapiGallery,
        precision: 'int8',
        calibration: path.join(imageDirectory, 'calibration'),
      }),
    ).toThrow(/precision "int8" needs the onnx provider/);
    expect(() => synth({ calibration: path.join(imageDirectory, 'calibration') })).toThrow(
      /calibration is for precision "int8" only/,
    );
    expect(() => synth({ precision: 'fp16' as never })).toThrow(/precision must be one of fp32, int8/);
  });

  it('builds for arm64 when asked (functions and image platform)', () => {
    const arm = synth({ architecture: 'arm64' });
    arm.template.allResourcesProperties('AWS::Lambda::Function', { Architectures: ['arm64'] });
    expect(dockerImageSources(arm.app).map((source) => source.platform)).toEqual(['linux/arm64']);
  });

  it('takes a prebuilt image from ECR, and warns when no gallery was given to check', () => {
    const app = new App({ autoSynth: false });
    const stack = new Stack(app, 'Prebuilt', { env: { account: '123456789012', region: 'eu-west-1' } });
    const repository = ecr.Repository.fromRepositoryName(stack, 'Repo', 'facerec');
    const digest = `sha256:${'ab'.repeat(32)}`;
    new FaceRecognitionPipeline(stack, 'Pipeline', { image: { repository, tagOrDigest: digest } });
    const template = Template.fromStack(stack);
    const fns = Object.values(template.findResources('AWS::Lambda::Function')).map(
      (f) => f.Properties as Json,
    );
    expect(fns).toHaveLength(2);
    for (const fn of fns) expect(JSON.stringify(fn.Code)).toContain(`facerec@${digest}`);
    expect(dockerImageSources(app, 'Prebuilt')).toEqual([]);
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('no gallery prop'));
    expect(warnings).toHaveLength(1);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('named by the tag'))).toEqual(
      [],
    );
    // A tag can be moved to another image after synth: warned of.
    const tagged = new Stack(app, 'Tagged', { env: { account: '123456789012', region: 'eu-west-1' } });
    new FaceRecognitionPipeline(tagged, 'Pipeline', {
      image: {
        repository: ecr.Repository.fromRepositoryName(tagged, 'Repo', 'facerec'),
        tagOrDigest: 'latest',
      },
    });
    expect(
      Annotations.fromStack(tagged).findWarning(
        '*',
        Match.stringLikeRegexp('prebuilt image is named by the tag "latest"'),
      ),
    ).toHaveLength(1);
  });

  it('allows a public Function URL only when asked, with a synth warning', () => {
    const open = synth({ functionUrlAuth: 'NONE' });
    open.template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE' });
    const warnings = Annotations.fromStack(open.stack).findWarning(
      '*',
      Match.stringLikeRegexp('functionUrlAuth is NONE'),
    );
    expect(warnings).toHaveLength(1);
  });
});

function expectNoWildcards(statements: Json[]): void {
  for (const s of statements) {
    const sqsActions = actionsOf(s).filter((a) => a.startsWith('sqs:'));
    if (!sqsActions.length) continue;
    expect(sqsActions.some((a) => a.includes('*'))).toBe(false);
    expect(resourcesOf(s).some((r) => r.includes('*'))).toBe(false);
  }
}

describe('FaceRecognitionPipeline reply queues (clients sharing the deployment)', () => {
  it('creates none by default: one response queue, no FACEREC_REPLY_QUEUES', () => {
    const { pipeline, template } = synth();
    expect(pipeline.replyQueues).toEqual({});
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function')))
      expect(
        (fn.Properties as { Environment: { Variables: Json } }).Environment.Variables,
      ).not.toHaveProperty('FACEREC_REPLY_QUEUES');
    expect(Object.keys(template.findOutputs('*')).some((k) => k.includes('ReplyQueue'))).toBe(false);
  });

  it('gives each named client an encrypted, TLS-only queue with a DLQ, an output and send rights', () => {
    const { stack, pipeline, template } = synth({ replyQueues: ['cameraA', 'door2'] });
    expect(Object.keys(pipeline.replyQueues)).toEqual(['cameraA', 'door2']);
    const replyIds = Object.values(pipeline.replyQueues).map((q) => logicalId(stack, q));
    // Each client's answers that it does not collect: an alarm of their own, named by the client, on the board.
    expect(Object.keys(pipeline.uncollectedReplyAlarms)).toEqual(['cameraA', 'door2']);
    const alarms = template.findResources('AWS::CloudWatch::Alarm');
    const dashboard = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));
    for (const [i, alarm] of Object.values(pipeline.uncollectedReplyAlarms).entries()) {
      const id = logicalId(stack, alarm);
      expect(id).toContain(`UncollectedAnswers${['cameraA', 'door2'][i]}Alarm`);
      expect(alarms[id]!.Properties).toMatchObject({
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [replyIds[i], 'QueueName'] } }],
        Threshold: 900,
      });
      expect(dashboard).toContain(id);
    }
    const responseDlq = logicalId(stack, pipeline.responseDeadLetterQueue);
    const queues = template.findResources('AWS::SQS::Queue');
    expect(Object.keys(queues)).toHaveLength(6);
    for (const id of replyIds) {
      const props = queues[id]!.Properties as Json;
      expect(props.SqsManagedSseEnabled).toBe(true);
      expect(props.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [responseDlq, 'Arn'] },
        maxReceiveCount: 5,
      });
    }
    const tlsOnly = Object.values(template.findResources('AWS::SQS::QueuePolicy')).filter((p) =>
      JSON.stringify((p.Properties as Json).PolicyDocument).includes('aws:SecureTransport'),
    );
    const covered = tlsOnly.flatMap((p) =>
      (p.Properties as { Queues: { Ref: string }[] }).Queues.map((q) => q.Ref),
    );
    for (const id of replyIds) expect(covered).toContain(id);

    // The allow-list both functions read, in the prop's order.
    for (const fn of [pipeline.detectionFunction, pipeline.recognitionFunction]) {
      const env = (
        template.findResources('AWS::Lambda::Function')[logicalId(stack, fn)]!.Properties as {
          Environment: { Variables: Json };
        }
      ).Environment.Variables;
      expect(env.FACEREC_REPLY_QUEUES).toEqual({
        'Fn::Join': [',', [{ Ref: replyIds[0] }, { Ref: replyIds[1] }]],
      });
      // Each function may send to every reply queue, and do nothing else with it.
      const onReply = statementsOf(template, logicalId(stack, fn.role as never)).filter((s) =>
        replyIds.some((id) => resourcesOf(s).includes(JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }))),
      );
      for (const id of replyIds) {
        const statements = onReply.filter((s) =>
          resourcesOf(s).includes(JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] })),
        );
        expect(statements.flatMap(actionsOf)).toContain('sqs:SendMessage');
        expect(
          statements
            .flatMap(actionsOf)
            .every(
              (a) =>
                a.startsWith('sqs:SendMessage') || a === 'sqs:GetQueueAttributes' || a === 'sqs:GetQueueUrl',
            ),
        ).toBe(true);
      }
      expectNoWildcards(statementsOf(template, logicalId(stack, fn.role as never)));
    }

    const outputs = template.findOutputs('*');
    for (const [name, id] of [
      ['cameraA', replyIds[0]],
      ['door2', replyIds[1]],
    ] as const) {
      const output = Object.entries(outputs).find(([key]) => key.startsWith(`PipelineReplyQueueUrl${name}`));
      expect(output?.[1].Value).toEqual({ Ref: id });
      expect(output?.[1].Description).toMatch(/--reply-queue-url/);
    }
  });
});

const outsideGallery = await writeGalleryFor(
  path.join(scratch, 'outside', 'gallery.json'),
  'inception-resnet-v1',
);

describe('FaceRecognitionPipeline props validation', () => {
  const cases: [string, FaceRecognitionPipelineProps, RegExp][] = [
    [
      'maxConcurrency above the recognition reserved concurrency',
      { recognition: { reservedConcurrency: 4 }, maxConcurrency: 8 },
      /maxConcurrency \(8\) must be ≤ recognition\.reservedConcurrency \(4\)/,
    ],
    ['an unknown provider', { provider: 'torch' }, /provider must be one of onnx, tfjs/],
    [
      'an unknown embedder',
      { embedder: 'arcface' },
      /embedder: No embedder model "arcface"; available: inception-resnet-v1, faceapi-resnet/,
    ],
    ['weights the embedder refuses', { weights: '' }, /weights must be a non-empty string/],
    ['an unknown prop', { memory: 1024 } as never, /unknown prop memory/],
    ['an unknown nested prop', { detection: { memory: 1 } } as never, /unknown prop detection\.memory/],
    ['memory out of range', { detection: { memorySize: 64 } }, /detection\.memorySize must be an integer/],
    ['timeout out of range', { recognition: { timeoutSeconds: 901 } }, /recognition\.timeoutSeconds/],
    ['a fractional batch size', { batchSize: 2.5 }, /batchSize must be an integer/],
    [
      'a large batch without a window',
      { batchSize: 100, maxBatchingWindowSeconds: 0 },
      /needs maxBatchingWindow/,
    ],
    ['a relative gallery path', { galleryPath: 'gallery.json' }, /galleryPath must be an absolute path/],
    [
      'a gallery URL',
      { gallery: 's3://bucket/gallery.json' },
      /gallery must be a local gallery file .* got the URL "s3:\/\/bucket\/gallery\.json"; for a gallery in S3 .* galleryBucket: true/,
    ],
    // What the functions would refuse at every start (FACEREC_CACHE_DIR, FACEREC_GALLERY, FACEREC_WEIGHTS).
    [
      'a relative model cache',
      { modelCacheDir: 'relative/models' },
      /modelCacheDir must be an absolute path/,
    ],
    [
      'a gallery path ending in a space',
      { galleryPath: '/x y ' },
      /galleryPath has spaces at the start or end/,
    ],
    ['weights with a trailing space', { weights: 'vggface2 ' }, /weights has spaces at the start or end/],
    [
      'weights that are neither a named model nor a path',
      { weights: 'vggface' },
      /weights: "vggface" is neither a named model \(vggface2, casia-webface\) nor a checkpoint file/,
    ],
    [
      'a build argument the construct derives',
      { buildArgs: { EMBEDDER: 'inception-resnet-v1', NODE_IMAGE: 'node:22' } },
      /buildArgs\.EMBEDDER is set by the construct from its props: use the embedder prop/,
    ],
    ['an unknown auth type', { functionUrlAuth: 'OPEN' as never }, /functionUrlAuth must be one of/],
    [
      'a missing gallery',
      { gallery: path.join(imageDirectory, 'gallery', 'nobody.json') },
      /gallery: .*nobody\.json does not exist\. Enroll one first: npx facerec enroll/,
    ],
    [
      'a gallery of another embedder than the one named',
      { embedder: 'inception-resnet-v1', gallery: faceapiGallery },
      /enrolled with embedder "faceapi-resnet" but the embedder offered is "inception-resnet-v1\/vggface2"/,
    ],
    [
      'a gallery of other weights',
      { weights: 'vggface2', gallery: casiaGallery },
      /"inception-resnet-v1\/casia-webface" but the embedder offered is "inception-resnet-v1\/vggface2"/,
    ],
    [
      'a file that is not a gallery',
      { gallery: path.join(imageDirectory, 'Dockerfile') },
      /gallery: .*Dockerfile/,
    ],
    ['a gallery outside the build context', { gallery: outsideGallery }, /must lie inside imageDirectory/],
    [
      'an image directory without a Dockerfile',
      { imageDirectory: tmpdir() },
      /imageDirectory: no Dockerfile in/,
    ],
    [
      'a prebuilt image with build props',
      { image: { repository: {} as never, tagOrDigest: 'latest' }, buildArgs: {} },
      /buildArgs cannot be combined with image/,
    ],
    [
      // The deploy guide's placeholder left in: refused at synth, not at deploy (nor warned of as a tag).
      'a prebuilt image named by a placeholder digest',
      { image: { repository: {} as never, tagOrDigest: 'sha256:…' } },
      /image\.tagOrDigest "sha256:…" is no image digest: sha256: and 64 lowercase hexadecimal digits/,
    ],
    [
      'a prebuilt image named by a digest cut short',
      { image: { repository: {} as never, tagOrDigest: `sha256:${'ab'.repeat(31)}` } },
      /is no image digest/,
    ],
    [
      'a prebuilt image named by no tag',
      { image: { repository: {} as never, tagOrDigest: 'v1 latest' } },
      /image\.tagOrDigest "v1 latest" is no image tag/,
    ],
    [
      // Its int8 graph was prepared when it was built: a calibration folder here would change nothing.
      'a prebuilt image with a calibration folder',
      {
        image: { repository: {} as never, tagOrDigest: 'latest' },
        precision: 'int8',
        calibration: imageDirectory,
      },
      /calibration cannot be combined with image/,
    ],
    [
      'a refresh period without the gallery bucket',
      { galleryRefreshSeconds: 30 },
      /galleryRefreshSeconds applies to the gallery bucket only \(galleryBucket: true\)/,
    ],
    [
      'a version retention without the gallery bucket',
      { galleryBucket: false, galleryVersionRetentionDays: 7 },
      /galleryVersionRetentionDays applies to the gallery bucket only/,
    ],
    [
      'an unknown architecture',
      { architecture: 'riscv' as never },
      /architecture must be one of x86_64, arm64/,
    ],
    [
      'arm64 with the tfjs provider',
      { architecture: 'arm64', provider: 'tfjs' },
      /arm64 is supported with the onnx/,
    ],
    ['a malformed alarm e-mail', { alarmEmail: 'oncall' }, /alarmEmail must be an e-mail address/],
    ['a zero reserved concurrency', { recognition: { reservedConcurrency: 0 } }, /reservedConcurrency/],
    [
      'a recognition reserved concurrency of 1, blaming it (not a maxConcurrency never set)',
      { recognition: { reservedConcurrency: 1 } },
      /^(?![\s\S]*maxConcurrency \()[\s\S]*recognition\.reservedConcurrency must be an integer in \[2, 10000\], got 1 \(or false to reserve none\): its SQS event source runs at least 2 invocations at once/,
    ],
    [
      'a maxConcurrency below the SQS minimum',
      { recognition: { reservedConcurrency: 4 }, maxConcurrency: 1 },
      /maxConcurrency must be an integer in \[2, 1000\], got 1 \(SQS event sources' range\)/,
    ],
    [
      'a detection reserved concurrency that is no number',
      { detection: { reservedConcurrency: true as never } },
      /detection\.reservedConcurrency must be an integer in \[1, 10000\], got true \(or false to reserve none\)/,
    ],
    [
      'an alarm threshold for Function URL 5xx answers below 1',
      { alarms: { functionUrl5xx: 0 } },
      /alarms\.functionUrl5xx must be an integer in \[1, 1000000\], got 0/,
    ],
    [
      'an uncollected-answer age the 4-day retention never reaches',
      { alarms: { uncollectedAnswerAgeSeconds: 345_600 } },
      /alarms\.uncollectedAnswerAgeSeconds must be an integer in \[60, 345599\], got 345600/,
    ],
    [
      'a latency alarm threshold of 0 ms',
      { alarms: { latencyMs: 0 } },
      /alarms\.latencyMs must be an integer in \[1, 900000\], got 0/,
    ],
    [
      'a dashboard that is no boolean',
      { dashboard: 'yes' as never },
      /dashboard must be true or false, got "yes"/,
    ],
    [
      'a reply queue name that is no identifier',
      { replyQueues: ['camera-1'] },
      /replyQueues: "camera-1" is not a client name/,
    ],
    ['a reply queue named twice', { replyQueues: ['a', 'a'] }, /replyQueues: "a" is named twice/],
    [
      'more reply queues than fit the environment',
      { replyQueues: Array.from({ length: MAX_REPLY_QUEUES + 1 }, (_, i) => `c${i}`) },
      /replyQueues: at most 20/,
    ],
    ['reply queues that are no array', { replyQueues: 'a' as never }, /replyQueues must be an array/],
    // What a JavaScript app passing context values on would send.
    [
      'a gallery bucket setting that is no boolean',
      { galleryBucket: 'false' as never },
      /galleryBucket must be true or false, got "false"/,
    ],
    [
      'a batch size given as text',
      { batchSize: '10' as never },
      /batchSize must be an integer in \[1, 10000\], got "10"/,
    ],
    [
      'a log retention CloudWatch does not have',
      { logRetention: 42 as never },
      /logRetention must be a logs\.RetentionDays value .*got 42/,
    ],
    [
      'a removal policy that is none',
      { removalPolicy: 'keep' as never },
      /removalPolicy must be a RemovalPolicy \(DESTROY, RETAIN, SNAPSHOT, RETAIN_ON_UPDATE_OR_DELETE\), got "keep"/,
    ],
    [
      'a models mirror outside the build context',
      { buildArgs: { FACEREC_MODELS_MIRROR: '/work/shared/models/upstream' } },
      /buildArgs\.FACEREC_MODELS_MIRROR must be a folder inside imageDirectory .*got "\/work\/shared\/models\/upstream"/,
    ],
    [
      'a models mirror that is not there',
      { buildArgs: { FACEREC_MODELS_MIRROR: 'no-such-mirror' } },
      /buildArgs\.FACEREC_MODELS_MIRROR must be a folder inside imageDirectory/,
    ],
    ['a Dockerfile name with a typo', { dockerFile: 'Dockerfil' }, /dockerFile: no Dockerfil in /],
    [
      'a models mirror that is no string',
      { buildArgs: { FACEREC_MODELS_MIRROR: 5 as never } },
      /buildArgs\.FACEREC_MODELS_MIRROR must be a folder inside imageDirectory .*got "5"/,
    ],
  ];
  it('rejects props that are no object, naming it', () => {
    expect(() => resolvePipelineProps(null as never)).toThrow(/props must be an object, got null/);
  });

  it.each(cases)('rejects %s', (_name, props, message) => {
    let error: unknown;
    try {
      synth(props);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FaceRecognitionPipelineError);
    expect((error as Error).message).toMatch(message);
  });
});

describe("what the build context's .dockerignore leaves out", () => {
  it('refuses a gallery, calibration folder or models mirror the image build would not see, at synth', async () => {
    // A context with the repository's own .dockerignore: CDK stages the asset through it, so what it drops is
    // not in the build (checked below on the staged copy).
    const context = mkdtempSync(path.join(scratch, 'ignored-'));
    writeFileSync(path.join(context, 'Dockerfile'), 'FROM public.ecr.aws/lambda/nodejs:22\n');
    writeFileSync(
      path.join(context, '.dockerignore'),
      readFileSync(new URL('../../../.dockerignore', import.meta.url), 'utf8'),
    );
    const kept = await writeGalleryFor(path.join(context, 'gallery', 'faceapi.json'), 'faceapi-resnet');
    const dropped = await writeGalleryFor(path.join(context, 'test', 'faceapi.json'), 'faceapi-resnet');
    for (const folder of ['faces/test', 'faces/kept', 'mirror/test', 'mirror/kept']) {
      mkdirSync(path.join(context, folder), { recursive: true });
    }
    // A file the calibration does not read may be dropped: only the folder and its images count.
    writeFileSync(path.join(context, 'faces', 'kept', 'notes.md'), 'a file *.md drops\n');
    for (const folder of ['mirror/test', 'mirror/kept'])
      writeFileSync(path.join(context, folder, 'pnet.pt'), '');
    const refused = (props: FaceRecognitionPipelineProps) => {
      try {
        synth({ imageDirectory: context, ...props });
      } catch (error) {
        return (error as Error).message;
      }
      return 'synthesized';
    };
    const leftOut = "is left out of the image's build context by imageDirectory's .dockerignore";
    expect(refused({ gallery: dropped })).toContain(`gallery: ${dropped} ${leftOut}`);
    // Through a link inside the context, to what it leaves out: staged as a link to nothing.
    symlinkSync(path.join(context, 'test'), path.join(context, 'linked'));
    const linked = path.join(context, 'linked', 'faceapi.json');
    expect(refused({ gallery: linked })).toContain(`gallery: ${linked} ${leftOut}`);
    expect(
      refused({ gallery: kept, precision: 'int8', calibration: path.join(context, 'faces', 'test') }),
    ).toContain(`calibration: ${path.join(context, 'faces', 'test')} (or an image in it) ${leftOut}`);
    expect(
      refused({ gallery: kept, precision: 'int8', calibration: path.join(context, 'faces', 'kept') }),
    ).toBe('synthesized');
    expect(refused({ gallery: kept, buildArgs: { FACEREC_MODELS_MIRROR: 'mirror/test' } })).toContain(
      `buildArgs.FACEREC_MODELS_MIRROR: ${path.join(context, 'mirror', 'test')} (or a checkpoint in it) ${leftOut}`,
    );
    // A calibration path that is a file.
    expect(
      refused({ gallery: kept, precision: 'int8', calibration: path.join(context, 'Dockerfile') }),
    ).toContain(
      `calibration: ${path.join(context, 'Dockerfile')} is a file; give the folder of face images it is in`,
    );
    // An allow-list .dockerignore ("*", then what to keep): a folder matched by "*" whose files are kept is
    // copied, as CDK copies it.
    const allowList = mkdtempSync(path.join(scratch, 'allow-list-'));
    writeFileSync(path.join(allowList, 'Dockerfile'), 'FROM public.ecr.aws/lambda/nodejs:22\n');
    writeFileSync(path.join(allowList, '.dockerignore'), '*\n!Dockerfile\n!gallery/**\n!calib/**\n');
    const allowed = await writeGalleryFor(path.join(allowList, 'gallery', 'faceapi.json'), 'faceapi-resnet');
    mkdirSync(path.join(allowList, 'calib'));
    writeFileSync(path.join(allowList, 'calib', 'a.jpg'), '');
    const kept2 = synth({
      imageDirectory: allowList,
      gallery: allowed,
      precision: 'int8',
      calibration: path.join(allowList, 'calib'),
    });
    const staged2 = path.join(
      kept2.app.synth().directory,
      String(dockerImageSources(kept2.app)[0]!.directory),
    );
    expect(existsSync(path.join(staged2, 'calib', 'a.jpg'))).toBe(true);
    // What passes is in the staged build context, and what was refused would not have been.
    const { app } = synth({
      imageDirectory: context,
      gallery: kept,
      buildArgs: { FACEREC_MODELS_MIRROR: 'mirror/kept' },
    });
    const assembly = app.synth().directory;
    const staged = path.join(assembly, String(dockerImageSources(app)[0]!.directory));
    expect(existsSync(path.join(staged, 'gallery', 'faceapi.json'))).toBe(true);
    expect(existsSync(path.join(staged, 'mirror', 'kept', 'pnet.pt'))).toBe(true);
    expect(existsSync(path.join(staged, 'test', 'faceapi.json'))).toBe(false);
    expect(existsSync(path.join(staged, 'faces', 'kept', 'notes.md'))).toBe(false);
  });
});

describe('the base image', () => {
  it("warns at synth when the Dockerfile's dated base image is more than 90 days old, not when it is newer or pinned", () => {
    const dockerFile = (tag: string) => {
      const dir = mkdtempSync(path.join(scratch, 'base-'));
      writeFileSync(
        path.join(dir, 'Dockerfile'),
        `ARG NODE_IMAGE=public.ecr.aws/lambda/nodejs:${tag}\nFROM \${NODE_IMAGE}\n`,
      );
      mkdirSync(path.join(dir, 'gallery'));
      writeFileSync(
        path.join(dir, 'gallery', 'gallery.json'),
        readFileSync(path.join(imageDirectory, 'gallery', 'gallery.json')),
      );
      return dir;
    };
    expect(
      baseImageAgeDays(path.join(dockerFile('22.2025.08.04.11'), 'Dockerfile'), Date.UTC(2025, 10, 2)),
    ).toEqual({
      image: 'public.ecr.aws/lambda/nodejs:22.2025.08.04.11',
      days: 90,
    });
    const warnings = (props: FaceRecognitionPipelineProps) =>
      Annotations.fromStack(synth(props).stack)
        .findWarning('*', Match.stringLikeRegexp('base image'))
        .map((w) => String(w.entry.data));
    const old = dockerFile('22.2025.08.04.11');
    expect(warnings({ imageDirectory: old })).toEqual([
      expect.stringMatching(
        /^FaceRecognitionPipeline: the Dockerfile's base image public\.ecr\.aws\/lambda\/nodejs:22\.2025\.08\.04\.11 is \d+ days old/,
      ),
    ]);
    // A base image passed as a build argument replaces the Dockerfile's; a digest has no date to judge.
    expect(
      warnings({
        imageDirectory: old,
        buildArgs: { NODE_IMAGE: 'public.ecr.aws/lambda/nodejs:22@sha256:abc' },
      }),
    ).toEqual([]);
    // Acknowledged on purpose by its id (on the stack, after the construct): gone, the others kept.
    const acknowledged = synth({ imageDirectory: old, functionUrlAuth: 'NONE' }).stack;
    CoreAnnotations.of(acknowledged).acknowledgeWarning(
      PIPELINE_WARNINGS.baseImageAge,
      'pinned by our release',
    );
    const left = Annotations.fromStack(acknowledged).findWarning('*', Match.anyValue());
    expect(left.map((w) => String(w.entry.data))).toEqual([
      expect.stringContaining(`functionUrlAuth is NONE`),
    ]);
    expect(String(left[0]!.entry.data)).toContain(`[ack: ${PIPELINE_WARNINGS.publicFunctionUrl}]`);
    const today = new Date();
    const fresh = `22.${today.getUTCFullYear()}.${String(today.getUTCMonth() + 1).padStart(2, '0')}.${String(today.getUTCDate()).padStart(2, '0')}.10`;
    expect(warnings({ imageDirectory: dockerFile(fresh) })).toEqual([]);
  });
});

describe('cdk-nag', () => {
  it.each([
    ['the defaults', {}],
    ['reply queues', { replyQueues: ['a', 'b'] }],
    [
      'no reserved concurrency',
      { detection: { reservedConcurrency: false }, recognition: { reservedConcurrency: false } },
    ],
    ['an alarm mailbox and a gallery bucket', { alarmEmail: 'ops@example.com', galleryBucket: true }],
  ] as const)(
    'AwsSolutions and Serverless packs report no unsuppressed errors or warnings (%s)',
    (_name, props) => {
      const { stack } = synth(props, true);
      const annotations = Annotations.fromStack(stack);
      const findings = [
        ...annotations.findError('*', Match.stringLikeRegexp('(AwsSolutions|Serverless)-.*')),
        ...annotations.findWarning('*', Match.stringLikeRegexp('(AwsSolutions|Serverless)-.*')),
      ].map((f) => `${f.id}: ${String(f.entry.data).split('\n')[0]}`);
      expect(findings).toEqual([]);
    },
  );
});
