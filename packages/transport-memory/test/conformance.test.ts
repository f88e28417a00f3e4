import { describeTransportConformance } from '@facerec/framework/testing';
import { InMemoryQueueTransport, ManualClock } from '../src/index.js';

describeTransportConformance('InMemoryQueueTransport (manual clock)', () => {
  const clock = new ManualClock(1_000_000);
  const transport = new InMemoryQueueTransport({ clock });
  return {
    transport,
    queue: (name) => name,
    advance: async (ms) => clock.advance(ms),
    dispose: () => transport.close(),
  };
});
