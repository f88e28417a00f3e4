import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { createApp } from '../bin/app.js';

// Staged, never built: a one-line Dockerfile keeps staging fast (the real app uses the repository root).
const imageDirectory = mkdtempSync(path.join(tmpdir(), 'facerec-cdk-app-'));
writeFileSync(path.join(imageDirectory, 'Dockerfile'), 'FROM public.ecr.aws/lambda/nodejs:20\n');

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
  });
});
