import { describeTransportConformance } from '@facerec/framework/testing';
import { installFakeSqs } from './fake-sqs.js';
import { setup } from './helpers.js';

describeTransportConformance('SqsTransport (SDK client on a fake SQS)', () => {
  const { clock, queues } = installFakeSqs();
  const { transport } = setup();
  return {
    transport,
    queue: (name) => `https://sqs.eu-west-1.amazonaws.com/123456789012/${name}`,
    advance: async (ms) => clock.advance(ms),
    dispose: async () => {
      await transport.close();
      await queues.close();
    },
  };
});
