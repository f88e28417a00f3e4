// Local runtime benchmark (`npm run bench -- serve`): prints figures, asserts nothing.
// Starts `facerec serve` (this checkout's build) on a gallery of the bbt identities and drives it open loop:
// one-face frames (../shared/faces/face-api.js/bbt) POSTed at fixed rates, a busy answer resent after its
// Retry-After (8 times at most), answers collected by four long polls. Per rate: accepted and answered
// frames, resends, latency from the accepted send to the answer. Kept apart from `facerec client` so that
// the same driver can measure older versions, whose answers lack fields the client now requires.
//   FACEREC_BENCH_RATES (default 60,100,125 requests/s), FACEREC_BENCH_SECONDS (default 20 per rate),
//   FACEREC_BENCH_SERVE_ARGS (default "--queue memory"; e.g. "--workers 0").
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchTempDir, ms, quantile, sharedDir } from './bench-common.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'packages', 'cli', 'dist', 'bin.js');
const rates = (process.env.FACEREC_BENCH_RATES ?? '60,100,125').split(',').map(Number);
const seconds = Number(process.env.FACEREC_BENCH_SECONDS ?? 20);
const serveArgs = (process.env.FACEREC_BENCH_SERVE_ARGS ?? '--queue memory').split(' ').filter(Boolean);
const bbt = path.join(sharedDir, 'faces', 'face-api.js', 'bbt');
const env = {
  ...process.env,
  FACEREC_MODELS_MIRROR: process.env.FACEREC_MODELS_MIRROR ?? path.join(sharedDir, 'models', 'upstream'),
  MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '1048576',
};

const work = benchTempDir('serve');
const gallery = path.join(work, 'bbt.gallery.json');
const enroll = spawnSync(
  process.execPath,
  [cli, 'enroll', bbt, '--out', gallery, '--embedder', 'faceapi-resnet', '--threshold', '0.448'],
  { env, encoding: 'utf8' },
);
if (enroll.status !== 0) {
  console.error(`enroll failed (is the repository built? npm run build):\n${enroll.stderr}`);
  process.exit(1);
}
const port = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = probe.address() as { port: number };
    probe.close(() => resolve(free));
  });
});
const url = `http://127.0.0.1:${port}`;
const server: ChildProcess = spawn(
  process.execPath,
  [cli, 'serve', '--gallery', gallery, '--port', String(port), '--quiet', ...serveArgs],
  { env, stdio: 'ignore' },
);
for (let i = 0; ; i++) {
  const up = await fetch(`${url}/health`).then(
    (r) => r.ok,
    () => false,
  );
  if (up) break;
  if (i > 240) throw new Error('facerec serve did not start within 60 s');
  await new Promise((r) => setTimeout(r, 250));
}

const frames = readdirSync(bbt).flatMap((identity) =>
  readdirSync(path.join(bbt, identity)).map((file) => ({
    identity,
    file,
    content: readFileSync(path.join(bbt, identity, file)).toString('base64'),
  })),
);

async function drive(rate: number, count: number) {
  const run = Math.random().toString(36).slice(2, 8);
  const sent = new Map<string, { at: number; identity: string; answered?: boolean }>();
  const latency: number[] = [];
  let refused = 0;
  let resends = 0;
  let correct = 0;
  let stop = false;
  const send = async (i: number) => {
    const frame = frames[i % frames.length]!;
    const requestId = `${run}-${i}`;
    const body = JSON.stringify({ content: frame.content, request_id: requestId, filename: frame.file });
    for (let attempt = 0; attempt < 9; attempt++) {
      const at = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.arrayBuffer();
      if (res.status === 200) {
        sent.set(requestId, { at, identity: frame.identity });
        return;
      }
      resends++;
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
    }
    refused++;
  };
  const poll = async () => {
    while (!stop) {
      const res = await fetch(`${url}/responses?prefix=${run}-&max=100&wait=1`);
      const { messages } = (await res.json()) as { messages: { request_id: string; result: string }[] };
      for (const m of messages) {
        const s = sent.get(m.request_id);
        if (!s || s.answered) continue;
        s.answered = true;
        latency.push(performance.now() - s.at);
        if (m.result === s.identity) correct++;
      }
    }
  };
  const pollers = Array.from({ length: 4 }, poll);
  const started = performance.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sends.push(send(i));
  }
  await Promise.all(sends);
  const deadline = performance.now() + 60_000;
  while (latency.length < sent.size && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  stop = true;
  await Promise.all(pollers);
  const avg = latency.reduce((a, b) => a + b, 0) / Math.max(latency.length, 1);
  console.log(
    `${rate} req/s × ${seconds} s: ${sent.size} accepted, ${latency.length} answered (${correct} named right), ` +
      `${refused} refused after 8 resends, ${resends} resends; latency avg ${ms(avg)}, ` +
      `p50 ${ms(quantile(latency, 0.5))}, p95 ${ms(quantile(latency, 0.95))}, max ${ms(Math.max(...latency))}`,
  );
}

console.log(`## facerec serve ${serveArgs.join(' ')}: one-face frames at fixed rates (open loop)`);
try {
  for (const rate of rates) await drive(rate, Math.round(rate * seconds));
} finally {
  server.kill('SIGINT');
}
