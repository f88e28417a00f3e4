import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { expect, it } from 'vitest';
import { startLocalS3, TEST_BUCKET } from './s3rver.js';

// The harness itself: s3rver alone fails this (cut bodies, or the SDK's "aborted" when the length it was
// promised is not there), which is what made the store's two-handle conformance test flaky in CI.
it('the local S3 gives whole versions to reads that meet writes of the same key, as S3 does', async () => {
  const s3 = await startLocalS3();
  try {
    const writer = s3.client();
    const reader = s3.client();
    const versions = Array.from({ length: 8 }, (_, i) =>
      JSON.stringify({ v: i, pad: 'x'.repeat(20_000 + i * 3_000) }),
    );
    const put = (body: string) =>
      writer.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: 'atomic.json', Body: body }));
    await put(versions[0]!);
    const seen: string[] = [];
    await Promise.all([
      (async () => {
        for (let i = 1; i <= 100; i++) await put(versions[i % versions.length]!);
      })(),
      (async () => {
        for (let i = 0; i < 100; i++) {
          const object = await reader.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: 'atomic.json' }));
          seen.push(await object.Body!.transformToString('utf8'));
        }
      })(),
    ]);
    expect(seen.filter((body) => !versions.includes(body)).length).toBe(0);
  } finally {
    await s3.stop();
  }
}, 60_000);
