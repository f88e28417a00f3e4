import { createHash, createHmac } from 'node:crypto';
import { functionUrlRegion, sigV4Sender } from '@facerec/cli';
import { describe, expect, it } from 'vitest';

const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const url = 'https://abc123.lambda-url.eu-west-1.on.aws/';

/** Captures what the sender would put on the wire. */
function capture() {
  const sent: { url: string; headers: Record<string, string>; body: string }[] = [];
  const fetch = (async (target: URL, init: RequestInit) => {
    sent.push({
      url: String(target),
      headers: init.headers as Record<string, string>,
      body: String(init.body),
    });
    return new Response('{"faces":1}', { status: 200 });
  }) as unknown as typeof globalThis.fetch;
  return { sent, fetch };
}

/**
 * Recomputes the SigV4 signature from the captured request with Node's crypto, following the published
 * algorithm step by step: an independent check of what the SDK signer produced.
 */
function expectedSignature(headers: Record<string, string>, body: string, region: string): string {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const auth = lower.authorization!;
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)![1]!.split(';');
  const amzDate = lower['x-amz-date']!;
  const date = amzDate.slice(0, 8);
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const canonical = [
    'POST',
    '/',
    '',
    ...signedHeaders.map((h) => `${h}:${lower[h]!.trim()}`),
    '',
    signedHeaders.join(';'),
    sha(body),
  ].join('\n');
  const scope = `${date}/${region}/lambda/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha(canonical)].join('\n');
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
  let key = hmac(`AWS4${credentials.secretAccessKey}`, date);
  for (const part of [region, 'lambda', 'aws4_request']) key = hmac(key, part);
  return createHmac('sha256', key).update(toSign).digest('hex');
}

describe('SigV4 signing for AWS_IAM Function URLs', () => {
  it('reads the region from a Function URL host', () => {
    expect(functionUrlRegion(url)).toBe('eu-west-1');
    expect(functionUrlRegion('http://127.0.0.1:3000/')).toBeUndefined();
  });

  it('signs each request for service lambda with a signature that verifies independently', async () => {
    const { sent, fetch } = capture();
    const send = sigV4Sender({ credentials, fetch });
    const body = JSON.stringify({ content: 'AAAA', request_id: 'r1', filename: 'f.png' });
    expect(await send(url, body)).toEqual({ status: 200, body: '{"faces":1}' });
    const { headers } = sent[0]!;
    const auth = headers.authorization!;
    expect(auth).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/lambda\/aws4_request, /,
    );
    expect(auth).toMatch(/SignedHeaders=[^,]*host[^,]*x-amz-date/);
    const signature = /Signature=([0-9a-f]{64})$/.exec(auth)![1];
    expect(signature).toBe(expectedSignature(headers, body, 'eu-west-1'));

    await send(url, body.replace('r1', 'r2'));
    expect(/Signature=([0-9a-f]{64})$/.exec(sent[1]!.headers.authorization!)![1]).not.toBe(signature);
  });

  it('refuses to guess a region it cannot read', async () => {
    const { fetch } = capture();
    await expect(sigV4Sender({ credentials, fetch })('http://localhost:3000/', '{}')).rejects.toThrow(
      /region/,
    );
  });
});
