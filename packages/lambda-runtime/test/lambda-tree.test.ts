/**
 * The Lambda task tree (`npm run lambda-tree`, the same script the Dockerfile runs) on its own, as on Lambda:
 * both handler entry modules imported from the tree the way the Lambda Node.js runtime imports them, the
 * model folder and everything else read-only (Node's permission model: only a temporary folder is writable,
 * HOME included), no network beyond the loopback SQS endpoint below, no model mirror. A Function URL event
 * goes through detection; the face messages it sends go through recognition as an SQS event; the answer must
 * name the person.
 *
 * SQS is the one thing that cannot run here: a small HTTP endpoint speaking SQS's JSON protocol
 * (SendMessageBatch, SendMessage) records what the real AWS SDK in the tree sends.
 *
 * CI builds the tree once (`.ci/run`) and points FACEREC_LAMBDA_TREE at it; otherwise this test builds one
 * into a temporary folder (needs `npm run build` and the npm registry or npm's cache).
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TREE_GALLERY, TREE_MODELS_DIR, treeBytes } from '../../../scripts/lambda-tree.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const INVOKER = fileURLToPath(new URL('./lambda-invoke.mjs', import.meta.url));
/**
 * Budget for the tree (onnx provider, face-api's net, linux/x64): measured 120 MB (node_modules 99 MB, of
 * which onnxruntime's linux/x64 library ≈ 30 MB and sharp's libvips ≈ 19 MB; models 32 MB). Lambda's limit for
 * an image is 10 GB, so the budget is about the cold start (bytes to pull), not a hard limit.
 */
const TREE_BUDGET_BYTES = 150e6;
/** Init (Node start + models loaded + warm-up) measured ≈ 1–3 s here; the bound only catches a regression. */
const INIT_BUDGET_MS = 20_000;
const PERSON = 'sheldon';
const FRAME = sharedPath('faces', 'face-api.js', 'bbt', PERSON, `${PERSON}1.png`);

interface Invocation {
  readonly initMs: number;
  readonly invokeMs: number;
  readonly result: unknown;
  readonly refused: readonly string[];
  readonly rssBytes: number;
}

interface SqsSend {
  readonly queueUrl: string;
  readonly body: string;
}

/** An SQS JSON-protocol endpoint that accepts sends and records them (it never delivers). */
async function startSqsRecorder(): Promise<{ server: Server; url: string; sent: SqsSend[] }> {
  const sent: SqsSend[] = [];
  const md5 = (text: string) => createHash('md5').update(text).digest('hex');
  const server = createServer((req, res) => {
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
        output = {
          Successful: (input.Entries ?? []).map((entry) => {
            sent.push({ queueUrl: input.QueueUrl, body: entry.MessageBody });
            return { Id: entry.Id, MessageId: randomUUID(), MD5OfMessageBody: md5(entry.MessageBody) };
          }),
          Failed: [],
        };
      } else if (target === 'AmazonSQS.SendMessage' && input.MessageBody !== undefined) {
        sent.push({ queueUrl: input.QueueUrl, body: input.MessageBody });
        output = { MessageId: randomUUID(), MD5OfMessageBody: md5(input.MessageBody) };
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
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sent };
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync(command, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (exit ${result.status}):\n${result.stderr.slice(-4000)}`,
    );
  }
  return result.stdout;
}

describeWithSharedData(
  'Lambda task tree',
  ['models/upstream/pnet.pt', `faces/face-api.js/bbt/${PERSON}/${PERSON}1.png`],
  () => {
    const temp = mkdtempSync(path.join(os.tmpdir(), 'facerec-tree-test-'));
    let tree: string;
    let sqs: Awaited<ReturnType<typeof startSqsRecorder>>;

    beforeAll(async () => {
      sqs = await startSqsRecorder();
      const prebuilt = process.env.FACEREC_LAMBDA_TREE;
      if (prebuilt && existsSync(prebuilt)) {
        tree = prebuilt;
        return;
      }
      // A gallery of two people (face-api's net: its weights install offline), then the tree for it.
      const gallery = path.join(temp, 'gallery.json');
      const people = path.join(temp, 'people');
      for (const name of [PERSON, 'leonard']) {
        mkdirSync(path.join(people, name), { recursive: true });
        for (const i of [2, 3]) {
          const file = `${name}${i}.png`;
          writeFileSync(
            path.join(people, name, file),
            readFileSync(sharedPath('faces', 'face-api.js', 'bbt', name, file)),
          );
        }
      }
      const env = { ...process.env, FACEREC_CACHE_DIR: path.join(temp, 'cache') };
      run(
        process.execPath,
        [
          'packages/cli/dist/bin.js',
          'enroll',
          people,
          '--out',
          gallery,
          '--embedder',
          'faceapi-resnet',
          '--threshold',
          '0.4',
        ],
        env,
      );
      tree = path.join(temp, 'tree');
      run(
        process.execPath,
        [
          '--import',
          'tsx',
          'scripts/lambda-tree.ts',
          '--out',
          tree,
          '--gallery',
          gallery,
          '--embedder',
          'faceapi-resnet',
        ],
        env,
      );
    }, 300_000);

    afterAll(async () => {
      await new Promise((resolve) => sqs?.server.close(resolve));
      rmSync(temp, { recursive: true, force: true });
    });

    /**
     * Runs one handler from the tree in a fresh Node process, Lambda-style (asynchronously: the SQS endpoint
     * answers from this process's event loop).
     */
    async function invoke(handler: 'detection' | 'recognition', event: unknown): Promise<Invocation> {
      const scratch = mkdtempSync(path.join(temp, `${handler}-tmp-`));
      const home = path.join(temp, 'home'); // exists but is not writable (permission model)
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
        FACEREC_REQUEST_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/facerec-requests',
        FACEREC_RESPONSE_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/facerec-responses',
        FACEREC_SQS_ENDPOINT: sqs.url,
        FACEREC_INVOKE_EVENT: eventFile,
        FACEREC_INVOKE_RESULT: resultFile,
      };
      const result = await promisify(execFile)(
        process.execPath,
        [
          '--experimental-permission',
          '--allow-fs-read=*',
          `--allow-fs-write=${scratch}/*`,
          '--allow-addons',
          '--no-warnings=ExperimentalWarning',
          INVOKER,
        ],
        { cwd: tree, env, encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      ).catch((error: { code?: number; stderr?: string; stdout?: string }) => {
        throw new Error(
          `${handler} handler failed (exit ${error.code}):\n${error.stderr?.slice(-3000)}\n${error.stdout?.slice(-3000)}`,
        );
      });
      if (!existsSync(resultFile)) throw new Error(`${handler} handler wrote no result:\n${result.stderr}`);
      return JSON.parse(readFileSync(resultFile, 'utf8')) as Invocation;
    }

    it('holds only the runtime packages, linux/x64 binaries, the models and the gallery, within budget', () => {
      const bytes = treeBytes(tree);
      console.log(`Lambda task tree: ${(bytes / 1e6).toFixed(1)} MB (budget ${TREE_BUDGET_BYTES / 1e6} MB)`);
      expect(bytes).toBeLessThan(TREE_BUDGET_BYTES);
      for (const absent of [
        'packages/cli',
        'packages/cdk',
        'examples',
        'node_modules/vitest',
        'node_modules/aws-cdk-lib',
        'node_modules/typescript',
        'packages/framework/src',
      ]) {
        expect(existsSync(path.join(tree, absent)), absent).toBe(false);
      }
      const ort = path.join(tree, 'node_modules/onnxruntime-node/bin/napi-v6');
      expect(existsSync(path.join(ort, 'linux/x64/onnxruntime_binding.node'))).toBe(true);
      for (const other of ['darwin', 'win32', 'linux/arm64'])
        expect(existsSync(path.join(ort, other)), other).toBe(false);
      expect(statSync(path.join(tree, TREE_GALLERY)).isFile()).toBe(true);
    });

    it('refuses to build without a gallery, or for a gallery of another embedder, naming the problem', () => {
      const script = (...args: string[]) =>
        spawnSync(
          process.execPath,
          ['--import', 'tsx', 'scripts/lambda-tree.ts', '--out', path.join(temp, 'refused'), ...args],
          {
            cwd: root,
            encoding: 'utf8',
          },
        );
      const missing = script(
        '--gallery',
        path.join(temp, 'no-such-gallery.json'),
        '--embedder',
        'faceapi-resnet',
      );
      expect(missing.status).toBe(2);
      expect(missing.stderr).toContain('gallery not found');
      const mismatch = script(
        '--gallery',
        path.join(tree, TREE_GALLERY),
        '--embedder',
        'inception-resnet-v1',
      );
      expect(mismatch.status).toBe(2);
      expect(mismatch.stderr).toMatch(
        /enrolled with embedder "faceapi-resnet".*"inception-resnet-v1\/vggface2"/,
      );
      expect(existsSync(path.join(temp, 'refused'))).toBe(false);
    });

    it('answers a Function URL frame through detection and recognition from the tree alone', async () => {
      const content = readFileSync(FRAME).toString('base64');
      const requestId = `tree-${randomUUID()}`;
      const detection = await invoke('detection', {
        version: '2.0',
        rawPath: '/',
        headers: { 'content-type': 'application/json' },
        requestContext: { http: { method: 'POST', path: '/' }, requestId: randomUUID() },
        body: JSON.stringify({ content, request_id: requestId, filename: `${PERSON}1.png` }),
        isBase64Encoded: false,
      });
      expect(detection.refused).toEqual([]);
      expect(detection.result).toMatchObject({ statusCode: 200 });
      const faces = sqs.sent.filter((m) => m.queueUrl.endsWith('/facerec-requests'));
      expect(faces.length).toBeGreaterThanOrEqual(1);

      const recognition = await invoke('recognition', {
        Records: faces.map((face, i) => ({
          messageId: `m-${i}`,
          receiptHandle: `r-${i}`,
          body: face.body,
          attributes: { ApproximateReceiveCount: '1' },
          messageAttributes: {},
          eventSource: 'aws:sqs',
        })),
      });
      expect(recognition.refused).toEqual([]);
      expect(recognition.result).toEqual({ batchItemFailures: [] });
      const answers = sqs.sent
        .filter((m) => m.queueUrl.endsWith('/facerec-responses'))
        .map((m) => JSON.parse(m.body) as { request_id: string; result: unknown });
      expect(answers.length).toBe(faces.length);
      expect(answers.every((a) => a.request_id === requestId)).toBe(true);
      expect(JSON.stringify(answers.map((a) => a.result))).toContain(PERSON);

      console.log(
        `init (Node start + models + warm-up): detection ${detection.initMs.toFixed(0)} ms, recognition ` +
          `${recognition.initMs.toFixed(0)} ms; first invocation: detection ${detection.invokeMs.toFixed(0)} ms, ` +
          `recognition ${recognition.invokeMs.toFixed(0)} ms (${faces.length} face(s)); RSS detection ` +
          `${(detection.rssBytes / 2 ** 20).toFixed(0)} MiB, recognition ${(recognition.rssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      expect(detection.initMs).toBeLessThan(INIT_BUDGET_MS);
      expect(recognition.initMs).toBeLessThan(INIT_BUDGET_MS);
    });
  },
);
