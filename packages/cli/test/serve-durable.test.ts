import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CACHE_DIR_ENV, MODELS_MIRROR_ENV } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cli, freePort } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BBT = ['faces', 'face-api.js'] as const;

interface Sent {
  status: number | 'error';
  faces?: number;
  frameId?: string;
}

/**
 * Issue #16's acceptance: kill -9 of `facerec serve` under load, restart on the same queue file, and every
 * request that was answered 200 gets exactly one answer per face, none lost and none twice.
 */
describeWithSharedData(
  'facerec serve as its own process: --token, and a durable queue killed mid-load',
  ['faces/face-api.js/bbt', 'models/upstream/pnet.pt'],
  () => {
    let work: string;
    let gallery: string;
    let people: string;
    let server: ChildProcess | undefined;
    const env = () => ({
      ...process.env,
      [CACHE_DIR_ENV]: path.join(work, 'cache'),
      [MODELS_MIRROR_ENV]: sharedPath('models', 'upstream'),
    });

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-durable-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
      people = path.join(work, 'people');
      for (const name of ['amy', 'bernadette', 'howard', 'leonard', 'penny', 'raj', 'sheldon', 'stuart']) {
        await mkdir(path.join(people, name), { recursive: true });
        for (const i of [1, 2])
          await symlink(
            sharedPath(...BBT, 'bbt', name, `${name}${i}.png`),
            path.join(people, name, `${name}${i}.png`),
          );
      }
      gallery = path.join(work, 'gallery.json');
      const run = await cli(
        'enroll',
        people,
        '--out',
        gallery,
        '--embedder',
        'faceapi-resnet',
        '--threshold',
        '0.5',
      );
      expect(run.code, run.stderr).toBe(0);
    });
    afterAll(async () => {
      server?.kill('SIGKILL');
      vi.unstubAllEnvs();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /** What each server {@link serve} started has written to stderr so far. */
    const started = new WeakMap<ChildProcess, () => string>();

    /** Starts `facerec serve` as its own process (the CLI from source) and waits until it answers. */
    async function serve(
      port: number,
      queue: string,
      token?: string,
      extra: readonly string[] = [],
      /** false: INFO logs too, on a stdout the test must read (else the pipe fills and the server stalls). */
      quiet = true,
    ): Promise<ChildProcess> {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'packages/cli/src/bin.ts',
          'serve',
          '--gallery',
          gallery,
          '--port',
          String(port),
          '--queue',
          queue,
          ...(quiet ? ['--quiet'] : []),
          ...(token ? ['--token', token] : []),
          ...extra,
        ],
        { cwd: ROOT, env: env(), stdio: ['ignore', quiet ? 'ignore' : 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      started.set(child, () => stderr);
      const exited = new Promise<never>((_, reject) =>
        child.once('exit', (code) => reject(new Error(`facerec serve exited (${code}): ${stderr}`))),
      );
      exited.catch(() => undefined);
      const up = (async () => {
        for (;;) {
          try {
            const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
            if ((await fetch(`http://127.0.0.1:${port}/health`, { headers })).ok) return;
          } catch {
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      })();
      await Promise.race([up, exited]);
      return child;
    }

    /** Runs `facerec serve` to its end (for starts that fail), killed after 75 s. */
    const serveFailing = (args: readonly string[], environment: NodeJS.ProcessEnv = env()) =>
      spawnSync(
        process.execPath,
        ['--import', 'tsx', 'packages/cli/src/bin.ts', 'serve', '--gallery', gallery, ...args],
        {
          cwd: ROOT,
          env: environment,
          encoding: 'utf8',
          timeout: 75_000,
        },
      );

    it('0.0.0.0 without a token is refused before any model loads', { timeout: 90_000 }, () => {
      const { FACEREC_LOCAL_TOKEN: _token, ...environment } = env() as NodeJS.ProcessEnv;
      const run = serveFailing(['--host', '0.0.0.0'], environment);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('(not loopback) needs a token');
      expect(run.stdout + run.stderr).not.toContain('warmed up');
    });

    it('a port in use is refused at once, before any model loads or worker starts (exit 2)', {
      timeout: 90_000,
    }, async () => {
      const busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      const port = (busy.address() as { port: number }).port;
      try {
        const run = serveFailing(['--port', String(port)]);
        expect(run.signal, 'killed after 75 s: still running').toBeNull();
        expect(run.status).toBe(2);
        expect(run.stderr).toContain(`port ${port} is already in use`);
        expect(run.stdout + run.stderr).not.toContain('warmed up');
      } finally {
        busy.close();
      }
    });

    it('serve --token refuses requests without the token, and client --token sends it', {
      timeout: 60_000,
    }, async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      server = await serve(port, 'memory', 'cli-flag-token');
      // A short token is taken on loopback, with a warning.
      await vi.waitFor(() =>
        expect(started.get(server!)!()).toContain(
          'warning: serve: a token of 14 characters can be guessed by any user of this machine',
        ),
      );
      const refused = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ content: '', request_id: 'no-token', filename: 'x.png' }),
      });
      expect(refused.status).toBe(401);
      const run = await cli(
        'client',
        '--url',
        url,
        '--frames',
        people,
        '--requests',
        '4',
        '--token',
        'cli-flag-token',
        '--json',
      );
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as { answered: number; accuracy: { correct: number } };
      expect(report.answered).toBe(4);
      expect(report.accuracy.correct).toBe(4);
      const stopped = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGINT');
      await stopped;
      server = undefined;
    });

    /** `serve` on a free port that drains for up to 30 s on Ctrl-C, what it prints collected, and a frame to send. */
    const serveDraining = async () => {
      const port = await freePort();
      server = await serve(port, 'memory', undefined, ['--drain-seconds', '30'], false);
      const out = { stderr: '', stdout: '' };
      server.stderr!.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
      server.stdout!.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => server!.once('exit', resolve));
      const content = (await readFile(sharedPath(...BBT, 'bbt1.jpg'))).toString('base64');
      return { url: `http://127.0.0.1:${port}`, out, exited, content };
    };

    it('a second Ctrl-C ends the wait for uncollected answers at once, and the exit code says so (130)', {
      timeout: 90_000,
    }, async () => {
      const { url, out, exited, content } = await serveDraining();
      const taken = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ content, request_id: 'never-collected', filename: 'bbt1.jpg' }),
      });
      expect(taken.status).toBe(200);
      server!.kill('SIGINT');
      await vi.waitFor(() => expect(out.stderr).toMatch(/stopping: no new frames; waiting up to 30 s for/), {
        timeout: 10_000,
      });
      const started = performance.now();
      server!.kill('SIGINT');
      // The rest of the stop is quick here: the process ends by itself, not by the 2 s forced exit, with 130.
      expect(await exited).toBe(130);
      expect(performance.now() - started).toBeLessThan(20_000);
      server = undefined;
      expect(out.stderr).toMatch(/facerec serve: stopped with .*lost \(--queue memory\)/);
    });

    it('Ctrl-C drains: new frames get 503, frames taken are answered and collected, then it exits 0', {
      timeout: 90_000,
    }, async () => {
      const { url, out, exited, content } = await serveDraining();
      const post = (id: string) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ content, request_id: id, filename: 'bbt1.jpg' }),
        });
      const taken = await Promise.all(['drain-1', 'drain-2'].map(post));
      expect(taken.map((r) => r.status)).toEqual([200, 200]);
      const faces = await Promise.all(taken.map(async (r) => ((await r.json()) as { faces: number }).faces));
      server!.kill('SIGINT');
      await vi.waitFor(() => expect(out.stderr).toMatch(/stopping: no new frames; waiting up to 30 s for/), {
        timeout: 10_000,
      });
      const refused = await post('drain-3');
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: string }).error).toMatch(/shutting down/);
      const answers: unknown[] = [];
      const expected = faces.reduce((a, b) => a + Math.max(b, 1), 0);
      while (answers.length < expected) {
        const res = await fetch(`${url}/responses?prefix=drain-&max=10&wait=2`);
        answers.push(...((await res.json()) as { messages: unknown[] }).messages);
      }
      expect(await exited).toBe(0);
      server = undefined;
      expect(out.stderr).toContain('stopped: every frame answered and every answer collected');
      // The JSON log sees the drain begin and end too (a log pipeline reads no plain-text line).
      const logged = `${out.stdout}\n${out.stderr}`
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(logged).toContainEqual(
        expect.objectContaining({ message: 'stopping: no new frames', drain_seconds: 30 }),
      );
      expect(logged).toContainEqual(
        expect.objectContaining({ message: 'stopped', drained: true, uncollected: 0, frames_cut_off: 0 }),
      );
    });

    it('Ctrl-C while a face is being added over the collections API: the stop waits for it, and it lands', {
      timeout: 90_000,
    }, async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const added = path.join(work, 'added.gallery.json');
      await copyFile(gallery, added);
      // The later --gallery wins: this test's own copy.
      server = await serve(port, 'memory', 'add-token', ['--gallery', added, '--drain-seconds', '30']);
      let stderr = '';
      server.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => server!.once('exit', resolve));
      const body = async (identity: string, name: string) =>
        JSON.stringify({
          identity,
          image: (await readFile(sharedPath(...BBT, 'bbt', name, `${name}3.png`))).toString('base64'),
        });
      const headers = { authorization: 'Bearer add-token', 'content-type': 'application/json' };
      const faces = `${url}/collections/default/faces`;
      // A first add: its write loads the temporary-file cleanup (signal-exit), which once took serve's first
      // Ctrl-C for an unhandled one, re-sent it (a second Ctrl-C: the stop cut short) and removed the
      // temporary file of a write still running.
      expect((await fetch(faces, { method: 'POST', headers, body: await body('first', 'amy') })).status).toBe(
        201,
      );
      // The second add's body is sent in two halves, the stop asked for in between: the add is under way.
      const text = Buffer.from(await body('second', 'raj'));
      let push!: (chunk: Uint8Array | null) => void;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          push = (chunk) => (chunk ? controller.enqueue(chunk) : controller.close());
        },
      });
      const adding = fetch(faces, { method: 'POST', headers, body: stream, duplex: 'half' } as RequestInit);
      push(text.subarray(0, text.length >> 1));
      await new Promise((r) => setTimeout(r, 500));
      server.kill('SIGINT');
      // Longer than the second the stop gives connections once it closes them.
      await new Promise((r) => setTimeout(r, 2_000));
      push(text.subarray(text.length >> 1));
      push(null);
      const answer = await adding;
      expect(answer.status).toBe(201);
      expect(await exited).toBe(0);
      server = undefined;
      expect(stderr).not.toMatch(/stopped at once|error/);
      // The first Ctrl-C says what it waits for, the add included (it said nothing when only an add was pending).
      expect(stderr).toMatch(
        /stopping: no new frames; waiting up to 30 s for 1 face being added to the gallery/,
      );
      const list = await cli('gallery', 'list', added, '--json');
      const { examples } = JSON.parse(list.stdout) as { examples: { identity: string }[] };
      expect(examples.map((e) => e.identity)).toEqual(expect.arrayContaining(['first', 'second']));
    });

    it('answers every request that got 200 exactly once after kill -9 and a restart on the same file', {
      timeout: 120_000,
    }, async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const queue = path.join(work, 'queue.sqlite');
      const frames = await Promise.all(
        ['bbt1.jpg', 'bbt3.jpg', 'bbt5.jpg'].map(async (name) => ({
          name,
          content: (await readFile(sharedPath(...BBT, name))).toString('base64'),
        })),
      );
      server = await serve(port, queue);
      const gone = new Promise((resolve) => server!.once('exit', resolve));

      // Load: 4 senders; kill -9 once 12 frames were accepted, while the others are being sent. Nobody collects
      // answers before the kill, so every one of them is still on the server then (queued or held for delivery).
      const sent = new Map<string, Sent>();
      let accepted = 0;
      let killed = false;
      let pendingAtKill = -1;
      let next = 0;
      const sender = async () => {
        while (!killed && next < 60) {
          const i = next++;
          const frame = frames[i % frames.length]!;
          const id = `load-${i}`;
          try {
            const res = await fetch(url, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ content: frame.content, request_id: id, filename: frame.name }),
            });
            const body = (await res.json()) as { faces?: number; frame_id?: string };
            sent.set(id, { status: res.status, faces: body.faces, frameId: body.frame_id });
            if (res.status === 200 && ++accepted === 12 && !killed) {
              const health = (await (await fetch(`${url}/health`)).json()) as {
                queues: Record<string, { visible: number; inFlight?: number; held?: number }>;
              };
              pendingAtKill = Object.values(health.queues).reduce(
                (n, q) => n + q.visible + (q.inFlight ?? 0) + (q.held ?? 0),
                0,
              );
              killed = true;
              server!.kill('SIGKILL');
            }
          } catch {
            sent.set(id, { status: 'error' });
          }
        }
      };
      await Promise.all(Array.from({ length: 4 }, sender));
      expect(killed).toBe(true);
      expect(pendingAtKill).toBeGreaterThan(0);
      await gone;

      server = await serve(port, queue);
      const ok = [...sent].filter(([, s]) => s.status === 200);
      const expected = ok.reduce((n, [, s]) => n + Math.max(s.faces!, 1), 0);
      const answers: { request_id: string; frame_id: string; face_index: number | null }[] = [];
      const answersOf = (id: string) => answers.filter((a) => a.request_id === id);
      const complete = () => ok.every(([id, s]) => answersOf(id).length >= Math.max(s.faces!, 1));
      const deadline = Date.now() + 45_000;
      while (!complete() && Date.now() < deadline) {
        const res = await fetch(`${url}/responses?prefix=load-&max=10&wait=2`);
        answers.push(...((await res.json()) as { messages: typeof answers }).messages);
      }
      // Anything sent twice would come within a few more seconds.
      const late = await fetch(`${url}/responses?prefix=load-&max=10&wait=3`);
      answers.push(...((await late.json()) as { messages: typeof answers }).messages);

      const seen = new Map<string, number>();
      for (const a of answers) {
        const key = `${a.request_id}:${a.frame_id}:${a.face_index}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      expect([...seen.values()].filter((n) => n > 1)).toEqual([]);
      for (const [id, s] of ok) {
        const mine = answersOf(id);
        expect(
          mine.every((a) => a.frame_id === s.frameId),
          id,
        ).toBe(true);
        expect(new Set(mine.map((a) => a.face_index)).size, `faces of ${id}`).toBe(Math.max(s.faces!, 1));
      }
      const missing = ok.filter(([id]) => answersOf(id).length === 0).map(([id]) => id);
      expect(missing, `answers ${answers.length}/${expected}`).toEqual([]);
      // A request whose connection kill -9 cut after its faces were queued got no 200, yet its faces are in the
      // file: the restarted server answers them, once each and all of one frame, as many as that photo has.
      const photoOf = (id: string) => frames[Number(id.slice('load-'.length)) % frames.length]!.name;
      const facesOf = new Map(ok.map(([id, s]) => [photoOf(id), s.faces!]));
      const cut = [...sent].filter(([, s]) => s.status === 'error').map(([id]) => id);
      let cutAnswered = 0;
      for (const id of cut) {
        const mine = answersOf(id);
        if (mine.length === 0) continue;
        cutAnswered++;
        expect(new Set(mine.map((a) => a.frame_id)).size, id).toBe(1);
        const faces = facesOf.get(photoOf(id));
        if (faces !== undefined) expect(mine.length, `faces of ${id}`).toBe(Math.max(faces, 1));
      }
      const theirs = new Set([...ok.map(([id]) => id), ...cut]);
      expect(answers.filter((a) => !theirs.has(a.request_id))).toEqual([]);
      expect(answers.filter((a) => ok.some(([id]) => id === a.request_id))).toHaveLength(expected);
      console.info(
        `durable serve: ${ok.length} frames accepted (${expected} faces), ${pendingAtKill} messages on the server at kill -9, ${cut.length} requests cut off (${cutAnswered} of them queued before the kill and answered); all ${expected} answered once after the restart`,
      );
    });
  },
);
