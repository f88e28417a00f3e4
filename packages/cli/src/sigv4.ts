import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

/** AWS credentials, or a provider of them (the SDK's default chain when omitted). */
export interface SigningCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Options of {@link sigV4Sender}. */
export interface SigV4SenderOptions {
  /** Region of the Function URL; default: parsed from the URL (`<id>.lambda-url.<region>.on.aws`). */
  readonly region?: string;
  /** Default: the AWS SDK's default credential chain (environment, profile, SSO, instance role...). */
  readonly credentials?: SigningCredentials | (() => Promise<SigningCredentials>);
  /** Default `fetch`. */
  readonly fetch?: typeof fetch;
}

/** The region of a Lambda Function URL, from its host name. */
export function functionUrlRegion(url: string): string | undefined {
  return /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(new URL(url).hostname)?.[1];
}

/**
 * A request sender that signs each POST with SigV4 for service `lambda`, as a Function URL with
 * `AWS_IAM` auth requires (the caller needs `lambda:InvokeFunctionUrl`). Signing uses the AWS SDK's own
 * signer; only the wiring is here.
 */
export function sigV4Sender(options: SigV4SenderOptions = {}) {
  const doFetch = options.fetch ?? fetch;
  let signer: SignatureV4 | undefined;
  const signerFor = async (url: string) => {
    if (signer) return signer;
    const region = options.region ?? functionUrlRegion(url);
    if (!region) throw new Error(`cannot tell the AWS region of ${url}; pass --region`);
    let credentials = options.credentials;
    if (!credentials) {
      const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
      credentials = defaultProvider();
    }
    signer = new SignatureV4({ service: 'lambda', region, credentials, sha256: Hash.bind(null, 'sha256') });
    return signer;
  };
  return async (
    url: string,
    body: string,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: string }> => {
    const target = new URL(url);
    const signed = await (await signerFor(url)).sign({
      method: 'POST',
      protocol: target.protocol,
      hostname: target.hostname,
      ...(target.port ? { port: Number(target.port) } : {}),
      path: target.pathname,
      query: Object.fromEntries(target.searchParams),
      headers: { host: target.host, 'content-type': 'application/json' },
      body,
    });
    const res = await doFetch(target, {
      method: 'POST',
      headers: signed.headers as Record<string, string>,
      body,
      ...(signal ? { signal } : {}),
    });
    return { status: res.status, body: await res.text() };
  };
}
