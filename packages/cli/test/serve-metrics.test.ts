import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CACHE_DIR_ENV, MODELS_MIRROR_ENV } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { formatWorkloadReport, loadFrames, localResponses, runWorkload } from '@facerec/lambda-runtime';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { rawRequest } from '../../lambda-runtime/test/raw-request.js';
import { serveLocally } from '../src/index.js';
import { addBbtPeople, bbt, cli, recogniseOver } from './helpers.js';

/** The samples of a Prometheus text exposition: `name{labels}` → value (comment lines left out). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    expect(match, `not a sample line: ${line}`).not.toBeNull();
    out.set(match![1]!, Number(match![2]));
  }
  return out;
}

describeWithSharedData(
  'facerec serve: GET /metrics',
  ['faces/face-api.js/bbt', 'models/upstream/pnet.pt'],
  () => {
    let work: string;
    let served: Awaited<ReturnType<typeof serveLocally>>;
    const scrape = async (headers: Record<string, string> = {}) => {
      const response = await fetch(`${served.runtime.url}/metrics`, { headers });
      return {
        status: response.status,
        type: response.headers.get('content-type'),
        text: await response.text(),
      };
    };

    /** `fn` on a second server of the same gallery, with `options` (closed after). */
    async function withServer(
      options: Partial<Parameters<typeof serveLocally>[0]>,
      fn: (other: Awaited<ReturnType<typeof serveLocally>>) => Promise<void>,
    ) {
      const other = await serveLocally({
        gallery: served.gallery.location,
        port: 0,
        quiet: true,
        ...options,
      });
      try {
        await fn(other);
      } finally {
        await other.close();
      }
    }

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'facerec-serve-metrics-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
      const gallery = path.join(work, 'people.gallery.json');
      await addBbtPeople(gallery, ['amy', 'raj']);
      served = await serveLocally({ gallery, port: 0, quiet: true });
    });
    afterAll(async () => {
      await served?.close();
      vi.unstubAllEnvs();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('starts with every pipeline metric at zero, in Prometheus text format', async () => {
      const { status, type, text } = await scrape();
      expect(status).toBe(200);
      expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
      const at = samples(text);
      for (const name of [
        'facerec_frames_accepted_total',
        'facerec_frames_refused_total',
        'facerec_frames_failed_total',
        'facerec_faces_detected_total',
        'facerec_faces_answered_total',
        'facerec_faces_unknown_total',
        'facerec_faces_failed_total',
        'facerec_faces_dead_lettered_total',
        'facerec_detection_latency_seconds_count',
        'facerec_answer_latency_seconds_count',
        'facerec_recognition_latency_seconds_count',
      ]) {
        expect(at.get(name), name).toBe(0);
      }
      // What serves, as labels: a dashboard tells runs apart by them.
      expect([...at.keys()].filter((k) => k.startsWith('facerec_inference_info'))).toEqual([
        'facerec_inference_info{provider="onnx",embedder="faceapi-resnet",precision="fp32"}',
      ]);
      expect(at.get('facerec_frames_in_flight_limit')).toBe(16);
      expect(at.get('facerec_pixels_in_flight_limit')).toBe(50_000_000);
      expect(at.get('facerec_queue_depth_limit')).toBe(256);
      // Labelled series too, so that a rate sees the first refusal.
      expect(at.get('facerec_requests_refused_total{status="401"}')).toBe(0);
      expect(at.get('facerec_answers_dropped_total{reason="expired"}')).toBe(0);
      // Node's own: memory, event-loop delay.
      expect(at.get('process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(at.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
    });

    it('counts frames, faces and refusals as the pipeline answers them, with each latency', async () => {
      const before = samples((await scrape()).text);
      const delta = (name: string, now: Map<string, number>) =>
        (now.get(name) ?? 0) - (before.get(name) ?? 0);
      expect(await recogniseOver(served.runtime.url, bbt('amy', 3), 'metrics-1')).toBe('amy');
      expect(await recogniseOver(served.runtime.url, bbt('stuart', 3), 'metrics-2')).toBe('unknown');
      // Refused by the detection handler (not base64), and by the runtime itself (GET /).
      const bad = await fetch(served.runtime.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ content: 'not base64!', request_id: 'metrics-3', filename: 'x.png' }),
      });
      expect(bad.status).toBe(400);
      expect((await fetch(served.runtime.url)).status).toBe(405);

      const now = samples((await scrape()).text);
      expect(delta('facerec_frames_accepted_total', now)).toBe(2);
      expect(delta('facerec_frames_refused_total', now)).toBe(1);
      expect(delta('facerec_requests_refused_total{status="405"}', now)).toBe(1);
      expect(delta('facerec_faces_detected_total', now)).toBe(2);
      expect(delta('facerec_faces_answered_total', now)).toBe(2);
      expect(delta('facerec_faces_unknown_total', now)).toBe(1);
      expect(delta('facerec_detection_latency_seconds_count', now)).toBe(2);
      // From the face queued to its answer, each: the queue tells when it took the face.
      expect(delta('facerec_answer_latency_seconds_count', now)).toBe(2);
      const answerSeconds = delta('facerec_answer_latency_seconds_sum', now);
      expect(answerSeconds).toBeGreaterThan(0);
      expect(answerSeconds).toBeLessThan(40);
      // From each answered frame taken to its last answer ready: no more than the answer's own latency allows.
      expect(delta('facerec_frame_latency_seconds_count', now)).toBe(2);
      expect(delta('facerec_frame_latency_seconds_sum', now)).toBeGreaterThanOrEqual(answerSeconds);
      expect(now.get('facerec_queue_messages{queue="requests",state="visible"}')).toBe(0);
      expect(now.get('facerec_frames_in_flight')).toBe(0);
    });

    it('--max-faces: the 200 says how many were found, the client reports the faces left out', async () => {
      expect((await cli('serve', '--gallery', 'g.json', '--max-faces', '0')).stderr).toBe(
        'facerec: serve: --max-faces must be a positive integer, got "0"\n',
      );
      await withServer({ maxFaces: 2 }, async (few) => {
        const frames = path.join(work, 'frames', 'group');
        await mkdir(frames, { recursive: true });
        await copyFile(sharedPath('faces', 'face-api.js', 'bbt3.jpg'), path.join(frames, 'bbt3.jpg')); // 5 faces
        const report = await runWorkload({
          url: few.runtime.url,
          frames: await loadFrames(path.dirname(frames)),
          responses: localResponses(few.runtime.url),
          requests: 1,
          concurrency: 1,
          timeoutMs: 30_000,
        });
        expect(report.answered).toBe(1);
        expect(report.outcomes[0]).toMatchObject({ faces: 2, facesLeftOut: 3 });
        expect(report.facesLeftOut).toBe(3);
        expect(formatWorkloadReport(report)).toContain(
          'faces left out: 3 in 1 frame(s) had more faces than the server sends on per frame (the smallest; serve --max-faces, FACEREC_MAX_FACES)',
        );
      });
    });

    it('--min-face-size reaches detection, as FACEREC_MIN_FACE_SIZE on Lambda', async () => {
      // bbt3 at 30 %: five faces of 16–22 px, found from the default 20 px, none from 60.
      const group = sharedPath('faces', 'face-api.js', 'bbt3.jpg');
      const { width } = await sharp(group).metadata();
      const content = (
        await sharp(group)
          .resize(Math.round(width! * 0.3))
          .png()
          .toBuffer()
      ).toString('base64');
      const found = async (url: string, id: string) => {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ content, request_id: id, filename: 'small.png' }),
        });
        expect(response.status).toBe(200);
        return ((await response.json()) as { faces_found: number }).faces_found;
      };
      expect(await found(served.runtime.url, 'min-face-20')).toBe(5);
      await withServer({ minFaceSize: 60 }, async (from60) => {
        expect(await found(from60.runtime.url, 'min-face-60')).toBe(0);
      });
    });

    it('--request-timeout: a client that stalls mid-upload gets 408 after that many seconds', async () => {
      expect((await cli('serve', '--gallery', 'g.json', '--request-timeout', '0')).stderr).toBe(
        'facerec: serve: --request-timeout must be a number from 1 to 600, got "0"\n',
      );
      await withServer({ requestTimeoutMs: 1000 }, async (strict) => {
        const { port } = new URL(strict.runtime.url);
        const started = performance.now();
        const reply = rawRequest(
          port,
          `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`,
        );
        expect(await reply).toMatch(/^HTTP\/1\.1 408 [\s\S]*"request not received within 1 s/);
        expect(performance.now() - started).toBeLessThan(4000);
      });
    });
  },
);

describeWithSharedData(
  'facerec serve with a token, and Lambda variables set: GET /metrics',
  ['faces/face-api.js/bbt', 'models/upstream/pnet.pt'],
  () => {
    it('needs the bearer token, as every route does; the Lambda variables are said to be ignored', async () => {
      const work = await mkdtemp(path.join(tmpdir(), 'facerec-serve-metrics-token-'));
      vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
      vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
      const gallery = path.join(work, 'people.gallery.json');
      await addBbtPeople(gallery, ['amy']);
      // A Lambda function's variable set in serve's environment: said to be ignored (serve takes flags).
      vi.stubEnv('FACEREC_WARMUP', 'off');
      vi.stubEnv('FACEREC_PRECISION', 'int8');
      const said: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        said.push(String(chunk));
        return true;
      });
      const served = await serveLocally({ gallery, port: 0, quiet: true, token: 'metrics-token' }).finally(
        () => spy.mockRestore(),
      );
      expect(said.join('')).toContain(
        "facerec serve: ignoring FACEREC_PRECISION, FACEREC_WARMUP: the Lambda functions' settings; serve takes its own as flags",
      );
      try {
        expect((await fetch(`${served.runtime.url}/metrics`)).status).toBe(401);
        const scraped = await fetch(`${served.runtime.url}/metrics`, {
          headers: { authorization: 'Bearer metrics-token' },
        });
        expect(scraped.status).toBe(200);
        expect(await scraped.text()).toContain('facerec_frames_accepted_total 0');
      } finally {
        await served.close();
        vi.unstubAllEnvs();
        await rm(work, { recursive: true, force: true });
      }
    }, 120_000);
  },
);
