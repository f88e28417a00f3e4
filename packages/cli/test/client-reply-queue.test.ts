import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cli } from './helpers.js';

/**
 * `facerec client --reply-queue-url`: every request names the queue in `reply_to`, and the answers are
 * collected from that queue alone, through the real SQS transport and AWS SDK against a small local server
 * speaking the SQS JSON protocol (ReceiveMessage, DeleteMessageBatch: what the client calls).
 */

const body = async (req: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};
const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

/** A frames folder holding one file under `identity`, which the client sends as it is (never decoded here). */
const oneFrame = async (identity: string) => {
  const frames = await mkdtemp(path.join(tmpdir(), 'facerec-client-'));
  await mkdir(path.join(frames, identity));
  await writeFile(path.join(frames, identity, 'a.jpg'), 'not decoded by this endpoint');
  return frames;
};

/** Queues by URL; what was asked of them. */
function sqsServer() {
  const queues = new Map<string, { id: string; body: string; receipt: string }[]>();
  const calls: { action: string; queue: string }[] = [];
  const server = createServer(async (req, res) => {
    const action = String(req.headers['x-amz-target']).replace('AmazonSQS.', '');
    const input = JSON.parse(await body(req)) as {
      QueueUrl: string;
      MaxNumberOfMessages?: number;
      Entries?: { Id: string; ReceiptHandle: string }[];
    };
    calls.push({ action, queue: input.QueueUrl });
    const queue = queues.get(input.QueueUrl) ?? [];
    let out: unknown;
    if (action === 'ReceiveMessage') {
      const md5 = (s: string) => createHash('md5').update(s).digest('hex');
      out = {
        Messages: queue.slice(0, input.MaxNumberOfMessages ?? 1).map((m) => ({
          MessageId: m.id,
          ReceiptHandle: m.receipt,
          Body: m.body,
          MD5OfBody: md5(m.body),
          Attributes: { ApproximateReceiveCount: '1' },
        })),
      };
    } else if (action === 'DeleteMessageBatch') {
      const receipts = new Set(input.Entries!.map((e) => e.ReceiptHandle));
      queues.set(
        input.QueueUrl,
        queue.filter((m) => !receipts.has(m.receipt)),
      );
      out = { Successful: input.Entries!.map((e) => ({ Id: e.Id })), Failed: [] };
    } else {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#InvalidAction', message: action }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(JSON.stringify(out));
  });
  const publish = (queue: string, message: unknown) => {
    if (!queues.has(queue)) queues.set(queue, []);
    queues.get(queue)!.push({ id: randomUUID(), body: JSON.stringify(message), receipt: randomUUID() });
  };
  return { server, queues, calls, publish };
}

describe('facerec client --reply-queue-url', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    vi.unstubAllEnvs();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it('sends reply_to with every request and collects the answers from that queue only', async () => {
    const sqs = sqsServer();
    const sqsUrl = await listen(sqs.server);
    const replyQueue = `${sqsUrl}/123456789012/reply-a`;
    const responseQueue = `${sqsUrl}/123456789012/responses`;
    // A detection endpoint that answers every frame as faceless, "no face" on the queue the request named.
    const requests: Record<string, unknown>[] = [];
    const detection = createServer(async (req, res) => {
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const request = JSON.parse(await body(req)) as Record<string, string>;
      requests.push(request);
      const frame_id = randomUUID();
      sqs.publish(request.reply_to ?? responseQueue, {
        request_id: request.request_id,
        frame_id,
        filename: request.filename,
        face_index: null,
        face_count: 0,
        result: 'no face',
        distance: null,
        box: null,
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ request_id: request.request_id, frame_id, filename: request.filename, faces: 0 }),
      );
    });
    servers.push(sqs.server, detection);
    const url = await listen(detection);
    // Another client's answer waiting on the response queue: never touched.
    sqs.publish(responseQueue, { request_id: 'someone-else-0' });

    const frames = await oneFrame('amy');
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    vi.stubEnv('AWS_ENDPOINT_URL_SQS', sqsUrl);

    const run = await cli(
      'client',
      '--url',
      url,
      '--frames',
      frames,
      '--requests',
      '6',
      '--concurrency',
      '3',
      '--timeout',
      '10',
      '--reply-queue-url',
      replyQueue,
      '--json',
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ requests: 6, answered: 6, unanswered: [], duplicates: 0 });
    expect(requests).toHaveLength(6);
    for (const r of requests) expect(r.reply_to).toBe(replyQueue);
    expect(new Set(sqs.calls.map((c) => c.queue))).toEqual(new Set([replyQueue]));
    expect(sqs.queues.get(replyQueue)).toEqual([]);
    expect(sqs.queues.get(responseQueue)).toHaveLength(1);
  });

  it('refuses a queue URL that is none, naming its flag (exit 2)', async () => {
    for (const flag of ['--response-queue-url', '--reply-queue-url']) {
      const run = await cli('client', '--url', 'http://127.0.0.1:9', '--frames', tmpdir(), flag, 'ftp://q');
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(flag);
    }
  });

  it('says why collecting answers fails (the queue does not exist), instead of only counting frames unanswered', async () => {
    const sqs = createServer(async (req, res) => {
      await body(req);
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(
        JSON.stringify({
          __type: 'com.amazonaws.sqs#QueueDoesNotExist',
          message: 'The specified queue does not exist.',
        }),
      );
    });
    let sent = 0;
    const detection = createServer(async (req, res) => {
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      sent++;
      const request = JSON.parse(await body(req)) as Record<string, string>;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ request_id: request.request_id, frame_id: randomUUID(), faces: 0 }));
    });
    servers.push(sqs, detection);
    const sqsUrl = await listen(sqs);
    const url = await listen(detection);
    const frames = await mkdtemp(path.join(tmpdir(), 'facerec-client-'));
    await writeFile(path.join(frames, 'a.jpg'), 'not decoded by this endpoint');
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    // No endpoint set: the client goes to the server its queue URL names, without the SDK's warning per request.
    const started = Date.now();
    const run = await cli(
      'client',
      '--url',
      url,
      '--frames',
      frames,
      '--requests',
      '20',
      '--concurrency',
      '2',
      '--timeout',
      '30',
      '--response-queue-url',
      `${sqsUrl}/123456789012/no-such-queue`,
    );
    expect(run.exitCode).toBe(1);
    // Said once, not once per poll; and, since no answer could ever be read, the run stops at once instead of
    // sending every frame and waiting out its timeout for each.
    expect(run.stderr.match(/collecting answers failed: .*specified queue does not exist/g)).toHaveLength(1);
    expect(run.stdout).toMatch(/stopped: answers cannot be collected: .*specified queue does not exist/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(sent).toBeLessThan(20);
    expect(run.stderr).not.toContain('differs from SQSClient resolved endpoint');
  });

  it('refuses --reply-queue-url together with --response-queue-url', async () => {
    const run = await cli(
      'client',
      '--url',
      'http://127.0.0.1:9',
      '--frames',
      tmpdir(),
      '--reply-queue-url',
      'https://sqs.eu-west-1.amazonaws.com/1/a',
      '--response-queue-url',
      'https://sqs.eu-west-1.amazonaws.com/1/b',
    );
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/--reply-queue-url and --response-queue-url exclude each other/);
  });

  it('--max-retries bounds the resends of a frame answered 503 (busy)', async () => {
    let posts = 0;
    const endpoint = createServer((req, res) => {
      req.resume();
      if (req.method === 'POST') {
        posts++;
        res
          .writeHead(503, { 'content-type': 'application/json' })
          .end('{"error":"busy: frames in flight at the limit; retry later","request_id":null}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"messages":[]}');
    });
    servers.push(endpoint);
    const url = await listen(endpoint);
    const frames = await oneFrame('someone');
    const args = ['client', '--url', url, '--frames', frames, '--requests', '1'];
    args.push('--timeout', '5', '--wait', '0');
    const run = await cli(...args, '--max-retries', '2');
    expect(posts).toBe(3); // the first send and two resends
    expect([run.code, run.exitCode]).toEqual([0, 1]);
    expect(run.stdout).toMatch(/rejected: 1/);
    expect((await cli(...args, '--max-retries', '-1')).stderr).toMatch(/--max-retries must be/);
  });

  it('says why collecting answers fails with the cause fetch wraps ("fetch failed" alone said nothing)', async () => {
    const endpoint = createServer((req, res) => {
      req.resume();
      if (req.method === 'POST') {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('{"request_id":"x","frame_id":"f","filename":"a.jpg","faces":1}');
        return;
      }
      if (req.url?.startsWith('/responses'))
        req.socket.destroy(); // closed without an answer
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
    servers.push(endpoint);
    const url = await listen(endpoint);
    const frames = await oneFrame('someone');
    const run = await cli('client', '--url', url, '--frames', frames, '--requests', '1', '--timeout', '1');
    expect(run.stderr).toMatch(/collecting answers failed: fetch failed \(other side closed\)/);
  });

  it('refuses --sign without a queue to collect the answers from (exit 2), before sending anything', async () => {
    let requests = 0;
    const endpoint = createServer((_req, res) => {
      requests++;
      res.writeHead(403).end();
    });
    servers.push(endpoint);
    const url = await listen(endpoint);
    const run = await cli('client', '--url', url, '--frames', tmpdir(), '--sign');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /--sign needs --response-queue-url <ResponseQueueUrl> or --reply-queue-url <your reply queue>/,
    );
    expect(requests).toBe(0);
  });
});
