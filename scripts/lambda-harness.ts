// Runs the handlers of a Lambda task tree (scripts/lambda-tree.ts) as the Lambda Node.js runtime does, for
// the tree test (packages/lambda-runtime/test/lambda-tree.test.ts) and the cold-start bench
// (scripts/bench-coldstart.ts): one fresh Node process per invocation (packages/lambda-runtime/test/
// lambda-invoke.mjs imports the handler module from the tree, then calls it once), with the environment the
// runtime, the Dockerfile and the CDK construct give it and nothing from the calling shell; Node's permission
// model makes everything but a scratch folder read-only, HOME included. SQS cannot run here: an HTTP endpoint
// speaking SQS's JSON protocol records what the handlers send.
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TREE_GALLERY, TREE_MODELS_DIR } from './lambda-tree.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const INVOKER = path.join(root, 'packages', 'lambda-runtime', 'test', 'lambda-invoke.mjs');
/**
 * The Node binary the handlers run on: `$FACEREC_LAMBDA_NODE` (e.g. a Node 22 binary, the Lambda base image's
 * major, where the shell's Node is another), else this process's.
 */
const HANDLER_NODE = process.env.FACEREC_LAMBDA_NODE || process.execPath;
/** Node's permission model flag: `--permission` since Node 22.13 / 23.5, `--experimental-permission` before. */
let permission: string | undefined;
function permissionFlag(nodeBinary: string): string {
  if (permission !== undefined) return permission;
  const version = spawnSync(nodeBinary, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  permission =
    major > 23 || (major === 23 && minor >= 5) || (major === 22 && minor >= 13)
      ? '--permission'
      : '--experimental-permission';
  return permission;
}
export const REQUEST_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/facerec-requests';
export const RESPONSE_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/facerec-responses';

/** What one invocation reported (lambda-invoke.mjs). */
export interface Invocation {
  /** Process start → handler module imported (models loaded, warmed up): Lambda's init duration. */
  readonly initMs: number;
  readonly invokeMs: number;
  readonly result: unknown;
  /** Hosts the handler tried to reach other than the loopback (refused). */
  readonly refused: readonly string[];
  readonly rssBytes: number;
  /** The Node version the handler ran on (`$FACEREC_LAMBDA_NODE`'s, else this process's). */
  readonly node: string;
  /** What the process wrote to stdout and stderr (the function's log lines), the last 64 KiB of each. */
  readonly output: string;
}

/** A message a handler sent to SQS. */
export interface SqsSend {
  readonly queueUrl: string;
  readonly body: string;
  /** When the recorder took it (epoch milliseconds), as SQS's `SentTimestamp`. */
  readonly sentAt: number;
}

/** An SQS JSON-protocol endpoint that accepts SendMessage and SendMessageBatch and records them. */
export interface SqsRecorder {
  readonly url: string;
  readonly sent: SqsSend[];
  close(): Promise<void>;
}

export async function startSqsRecorder(): Promise<SqsRecorder> {
  const sent: SqsSend[] = [];
  const accepted = (body: string) => ({
    MessageId: randomUUID(),
    MD5OfMessageBody: createHash('md5').update(body).digest('hex'),
  });
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as {
        QueueUrl: string;
        MessageBody?: string;
        Entries?: { Id: string; MessageBody: string }[];
      };
      let output: unknown;
      if (target === 'AmazonSQS.SendMessageBatch') {
        const entries = input.Entries ?? [];
        for (const e of entries)
          sent.push({ queueUrl: input.QueueUrl, body: e.MessageBody, sentAt: Date.now() });
        output = { Successful: entries.map((e) => ({ Id: e.Id, ...accepted(e.MessageBody) })), Failed: [] };
      } else if (target === 'AmazonSQS.SendMessage' && input.MessageBody !== undefined) {
        sent.push({ queueUrl: input.QueueUrl, body: input.MessageBody, sentAt: Date.now() });
        output = accepted(input.MessageBody);
      } else {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(
          JSON.stringify({ __type: 'com.amazonaws.sqs#InvalidAction', message: `not recorded: ${target}` }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify(output));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sent,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function node(args: readonly string[], env: NodeJS.ProcessEnv): void {
  const result = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status !== 0) {
    throw new Error(`node ${args.join(' ')} failed (exit ${result.status}):\n${result.stderr.slice(-4000)}`);
  }
}

/**
 * Builds a tree in `work` for a faceapi-resnet gallery (its weights install offline) of `people` from the
 * bbt identities in `bbt` (images 2 and 3 each, so image 1 stays held out): `facerec enroll`, then
 * `npm run lambda-tree`'s script; with `int8`, with the int8 graph too: calibrated on `int8.calibration` (a
 * folder of face images), as CI builds it, or without one on faceapi-resnet's shipped ranges. Needs `npm run
 * build`, the model mirror and the npm registry or cache.
 */
export function buildTestTree(
  work: string,
  bbt: string,
  people: readonly string[] = ['sheldon', 'leonard'],
  int8?: { readonly calibration?: string },
): string {
  const folder = path.join(work, 'people');
  for (const name of people) {
    mkdirSync(path.join(folder, name), { recursive: true });
    for (const i of [2, 3]) {
      copyFileSync(path.join(bbt, name, `${name}${i}.png`), path.join(folder, name, `${name}${i}.png`));
    }
  }
  const env = { ...process.env, FACEREC_CACHE_DIR: path.join(work, 'cache') };
  const gallery = path.join(work, 'gallery.json');
  node(
    [
      path.join(root, 'packages/cli/dist/bin.js'),
      'enroll',
      folder,
      '--out',
      gallery,
      '--embedder',
      'faceapi-resnet',
    ],
    env,
  );
  const tree = path.join(work, 'tree');
  node(
    [
      '--import',
      'tsx',
      path.join(root, 'scripts/lambda-tree.ts'),
      '--out',
      tree,
      '--gallery',
      gallery,
      '--embedder',
      'faceapi-resnet',
      ...(int8 ? ['--precision', 'int8'] : []),
      ...(int8?.calibration ? ['--calibration', int8.calibration] : []),
    ],
    env,
  );
  return tree;
}

/** Where {@link invokeFromTree} runs a handler, and what it adds to the environment. */
export interface TreeInvocationSetup {
  readonly tree: string;
  /** A folder for the invocations' scratch folders (their only writable place). */
  readonly work: string;
  readonly sqs: SqsRecorder;
  /** E.g. the idempotency table the construct configures. */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Runs `handler` of the tree once in a fresh process, Lambda-style, asynchronously (the SQS endpoint answers
 * from this process's event loop meanwhile).
 */
export async function invokeFromTree(
  setup: TreeInvocationSetup,
  handler: 'detection' | 'recognition',
  event: unknown,
): Promise<Invocation> {
  const { tree, work, sqs } = setup;
  const scratch = mkdtempSync(path.join(work, `${handler}-tmp-`));
  const home = path.join(work, 'home'); // exists but is not writable (permission model)
  mkdirSync(home, { recursive: true });
  const eventFile = path.join(scratch, 'event.json');
  const resultFile = path.join(scratch, 'result.json');
  writeFileSync(eventFile, JSON.stringify(event));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    TMPDIR: scratch,
    TZ: ':UTC',
    LANG: 'en_US.UTF-8',
    LAMBDA_TASK_ROOT: tree,
    _HANDLER: `packages/lambda-runtime/dist/lambda/${handler}.handler`,
    AWS_LAMBDA_FUNCTION_NAME: `facerec-${handler}`,
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_SESSION_TOKEN: 'token',
    NODE_ENV: 'production',
    // What the Dockerfile's ENV sets, relative to the task root; what the construct sets per function.
    FACEREC_CACHE_DIR: path.join(tree, TREE_MODELS_DIR),
    FACEREC_GALLERY: path.join(tree, TREE_GALLERY),
    FACEREC_EMBEDDER: 'faceapi-resnet',
    FACEREC_REQUEST_QUEUE_URL: REQUEST_QUEUE_URL,
    FACEREC_RESPONSE_QUEUE_URL: RESPONSE_QUEUE_URL,
    FACEREC_SQS_ENDPOINT: sqs.url,
    FACEREC_INVOKE_EVENT: eventFile,
    FACEREC_INVOKE_RESULT: resultFile,
    ...setup.env,
  };
  const args = [
    permissionFlag(HANDLER_NODE),
    '--allow-fs-read=*',
    `--allow-fs-write=${scratch}/*`,
    '--allow-addons',
    '--no-warnings=ExperimentalWarning',
    INVOKER,
  ];
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      HANDLER_NODE,
      args,
      { cwd: tree, env, timeout: 120_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error || !existsSync(resultFile)) {
          reject(
            new Error(
              `${handler} handler failed (${error?.message ?? 'no result'}):\n${stderr.slice(-3000)}\n${stdout.slice(-3000)}`,
            ),
          );
        } else resolve(`${stdout.slice(-65536)}${stderr.slice(-65536)}`);
      },
    );
  });
  return { ...(JSON.parse(readFileSync(resultFile, 'utf8')) as Omit<Invocation, 'output'>), output };
}

/** A Function URL (payload 2.0) POST of one frame, as the client sends it. */
export function functionUrlEvent(frame: Uint8Array, requestId: string, filename: string): unknown {
  return {
    version: '2.0',
    rawPath: '/',
    headers: { 'content-type': 'application/json' },
    requestContext: { http: { method: 'POST', path: '/' }, requestId: randomUUID() },
    body: JSON.stringify({ content: Buffer.from(frame).toString('base64'), request_id: requestId, filename }),
    isBase64Encoded: false,
  };
}

/** The SQS event the request queue's event source would deliver for `messages` (receive count `receive`). */
export function sqsEvent(messages: readonly SqsSend[], receive = 1): unknown {
  return {
    Records: messages.map((m, i) => ({
      messageId: `m-${receive}-${i}`,
      receiptHandle: `r-${receive}-${i}`,
      body: m.body,
      attributes: { ApproximateReceiveCount: String(receive), SentTimestamp: String(m.sentAt) },
      messageAttributes: {},
      eventSource: 'aws:sqs',
    })),
  };
}
