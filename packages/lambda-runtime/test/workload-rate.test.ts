import { randomUUID } from 'node:crypto';
import {
  formatWorkloadReport,
  INTERRUPT_GRACE_MS,
  runWorkload,
  type WorkloadOptions,
} from '@facerec/lambda-runtime';
import { expect, it } from 'vitest';
import { NO_FACE, type ResponseMessage } from '../src/messages.js';

/** A workload against a fake server (`send`) and answer source (`responses`): nothing listens at the URL. */
const workload = (options: Partial<WorkloadOptions>) =>
  runWorkload({
    url: 'http://127.0.0.1:1',
    frames: [{ file: 'f', filename: 'f.png', expected: 'amy', content: 'AA==' }],
    responses: { poll: async () => [] },
    ...options,
  });

/** A server that takes every frame (one face each) and never answers. */
const takesNeverAnswers: WorkloadOptions['send'] = async (_url, body) => ({
  status: 200,
  body: JSON.stringify({ ...JSON.parse(body), faces: 1 }),
});

/**
 * `rate` paces an open load: request i leaves i / rate seconds after the start, whatever the answers do
 * (`facerec client --rate`, for fixed-rate load tests of admission control).
 */
it('sends at the requested rate (request i at i / rate s), with every request still answered', async () => {
  const sentAt: number[] = [];
  const pending: ResponseMessage[] = [];
  const started = performance.now();
  const report = await workload({
    frames: [{ file: 'f', filename: 'f.png', expected: undefined, content: 'AA==' }],
    requests: 10,
    concurrency: 10,
    rate: 40,
    timeoutMs: 5000,
    send: async (_url, body) => {
      sentAt.push(performance.now() - started);
      const { request_id } = JSON.parse(body) as { request_id: string };
      pending.push({
        request_id,
        frame_id: randomUUID(),
        filename: 'f.png',
        face_index: null,
        face_count: 0,
        result: NO_FACE,
        distance: null,
        box: null,
      });
      return { status: 200, body: JSON.stringify({ request_id, faces: 0 }) };
    },
    responses: answersFrom(pending),
  });
  expect(report.answered).toBe(10);
  // 10 requests at 40/s: each no earlier than its slot, i / 40 s after the start.
  sentAt.sort((a, b) => a - b);
  sentAt.forEach((t, i) => {
    expect(t).toBeGreaterThanOrEqual((i * 1000) / 40 - 2);
  });
});

it('reports failed requests grouped by what happened, not one line each, and counts accuracy over answered ones', async () => {
  let n = 0;
  const report = await workload({
    requests: 6,
    concurrency: 1,
    timeoutMs: 1000,
    maxRetries: 0,
    // The first five are refused by the server, the sixth fails without a response.
    send: async () => {
      if (++n <= 5) return { status: 400, body: '{"error":"bad frame"}' };
      throw new TypeError('fetch failed', { cause: new Error('other side closed') });
    },
  });
  const lines = formatWorkloadReport(report);
  expect(report).toMatchObject({
    answered: 0,
    rejected: 5,
    failed: 1,
    accuracy: { faces: 0, correct: 0, noFace: 0 },
  });
  const failures = lines.filter((l) => l.includes('bad frame') || l.includes('other side closed'));
  expect(failures).toHaveLength(2);
  expect(failures[0]).toMatch(
    /^5 requests \(.+-0 \(f\.png\), .+-1 \(f\.png\), .+-2 \(f\.png\), …\): HTTP 400 /,
  );
  expect(failures[1]).toMatch(/-5 \(f\.png\): no answer: fetch failed \(other side closed\)$/);
  // Nothing answered: no latency figures made of NaN.
  expect(lines).toContain('latency: no request was answered');
  expect(lines.join('\n')).not.toContain('NaN');
});

it('names unanswered requests with their files, the first five only', async () => {
  const report = await workload({
    requests: 7,
    concurrency: 7,
    timeoutMs: 300,
    send: takesNeverAnswers,
    responses: { poll: () => new Promise((r) => setTimeout(() => r([]), 5)) },
  });
  expect(report.unanswered).toHaveLength(7);
  // A poller that answers at once with nothing does not keep the workload from timing out (it used to spin).
  let polls = 0;
  const immediate = await workload({
    requests: 1,
    concurrency: 1,
    timeoutMs: 200,
    send: takesNeverAnswers,
    responses: {
      poll: async () => {
        polls++;
        return [];
      },
    },
  });
  expect(immediate.unanswered).toHaveLength(1);
  expect(polls).toBeLessThan(100);
  const line = formatWorkloadReport(report).find((l) => l.startsWith('unanswered:'));
  expect(line).toMatch(/^unanswered: 7 \((\S+ \(f\.png\), ){5}…\); --json lists them all$/);
});

it('counts a frame in which no face was found apart from the faces it names', async () => {
  const pending: ResponseMessage[] = [];
  const answer = (request_id: string, face_index: number | null, face_count: number, result: string) =>
    pending.push(answerOf(request_id, face_index, face_count, result));
  let n = 0;
  const report = await workload({
    frames: [
      { file: 'amy/group.png', filename: 'group.png', expected: 'amy', content: 'AA==' },
      { file: 'amy/empty.png', filename: 'empty.png', expected: 'amy', content: 'AA==' },
    ],
    requests: 2,
    concurrency: 1,
    timeoutMs: 5000,
    send: async (_url, body) => {
      const { request_id } = JSON.parse(body) as { request_id: string };
      // The first frame shows amy and two others; the second has no face.
      if (n++ === 0)
        for (const [i, who] of ['amy', 'raj', 'unknown'].entries()) answer(request_id, i, 3, who);
      else answer(request_id, null, 0, NO_FACE);
      return { status: 200, body: JSON.stringify({ request_id, faces: n === 1 ? 3 : 0 }) };
    },
    responses: answersFrom(pending),
  });
  expect(report.accuracy).toEqual({ faces: 3, correct: 1, noFace: 1 });
  expect(formatWorkloadReport(report)).toContain(
    'accuracy: 1/3 faces (33.3%) named as their folder; no face found in 1 frame',
  );
});

it('ends early on its signal (a Ctrl-C): no more frames; those in flight get a grace for their answers', async () => {
  const sent: string[] = [];
  const pending: ResponseMessage[] = [];
  const interrupted = ctrlCAfter(300);
  const started = performance.now();
  const report = await workload({
    requests: 1000,
    concurrency: 2,
    rate: 20,
    timeoutMs: 60_000,
    signal: interrupted,
    // Each frame is answered 1 s after it was taken: those in flight at the Ctrl-C are answered in the grace.
    send: async (_url, body) => {
      const { request_id } = JSON.parse(body) as { request_id: string };
      sent.push(request_id);
      setTimeout(() => pending.push(amyAnswer(request_id)), 1000);
      return { status: 200, body: JSON.stringify({ request_id, faces: 1 }) };
    },
    responses: answersFrom(pending),
  });
  expect(performance.now() - started).toBeLessThan(3_000);
  expect(report.stopped).toBe(true);
  expect(sent.length).toBeGreaterThan(0);
  expect(sent.length).toBeLessThan(20);
  expect(report.requests).toBe(sent.length);
  expect(report.outcomes).toHaveLength(sent.length);
  expect(report).toMatchObject({ answered: sent.length, unanswered: [] });
  expect(formatWorkloadReport(report)).toContain(
    'stopped early (Ctrl-C): the figures cover the frames sent until then',
  );
});

it('a Ctrl-C against a server that never answers ends the run after the grace, the frames out said as such', async () => {
  const interrupted = ctrlCAfter(300);
  const started = performance.now();
  const report = await workload({
    requests: 10,
    concurrency: 2,
    timeoutMs: 60_000,
    signal: interrupted,
    send: frozen,
  });
  const took = performance.now() - started;
  expect(took).toBeGreaterThanOrEqual(300 + INTERRUPT_GRACE_MS - 50);
  expect(took).toBeLessThan(300 + INTERRUPT_GRACE_MS + 1500);
  expect(report).toMatchObject({ stopped: true, requests: 2, failed: 2, answered: 0 });
  expect(report.outcomes.map((o) => o.error)).toEqual([
    'the run stopped before the server answered the send',
    'the run stopped before the server answered the send',
  ]);
});

/** A server that takes the connection and never answers (frozen): the send ends only when its signal aborts. */
const frozen: WorkloadOptions['send'] = (_url, _body, signal) =>
  new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));

it('stops at a send the server does not answer within the timeout (a frozen server): no more frames sent', async () => {
  const started = performance.now();
  const report = await workload({ requests: 10, concurrency: 2, timeoutMs: 400, send: frozen });
  // Both sends out time out together at 0.4 s; the other 8 frames are not sent.
  expect(performance.now() - started).toBeLessThan(1_500);
  expect(report).toMatchObject({ requests: 2, failed: 2, answered: 0, unanswered: [] });
  expect(report.unresponsive).toBe(
    'the server did not answer the send within 0.4 s (frozen, or overloaded past --timeout)',
  );
  const lines = formatWorkloadReport(report).join('\n');
  expect(lines).toContain(
    'stopped, no more frames sent: the server did not answer the send within 0.4 s (frozen, or overloaded past --timeout)',
  );
  expect(lines).toContain('no answer: the server did not answer the send within 0.4 s');
});

it("stops at the timeout also with a send of the caller's that ignores its signal, with no listener warning", async () => {
  const warnings: string[] = [];
  const warned = (w: Error) => warnings.push(w.name);
  process.on('warning', warned);
  try {
    const started = performance.now();
    const report = await workload({
      requests: 40,
      concurrency: 20,
      timeoutMs: 400,
      // A sender written against the two-argument type: it never looks at a signal, and never settles.
      send: () => new Promise(() => {}),
    });
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(report).toMatchObject({ requests: 20, failed: 20 });
    expect(report.unresponsive).toMatch(/^the server did not answer the send within 0.4 s/);
    await new Promise((r) => setImmediate(r));
    // 20 sends in flight, each listening to the run's stop: no MaxListenersExceededWarning.
    expect(warnings).toEqual([]);
  } finally {
    process.off('warning', warned);
  }
});

it('a Ctrl-C against a server that keeps answering 503 ends within the grace: no frame is resent after it', async () => {
  let sends = 0;
  const interrupted = ctrlCAfter(300);
  const started = performance.now();
  const report = await workload({
    requests: 10,
    concurrency: 2,
    timeoutMs: 60_000,
    signal: interrupted,
    send: async () => {
      sends++;
      return { status: 503, body: '{"error":"busy"}', retryAfterSeconds: 1 };
    },
  });
  expect(performance.now() - started).toBeLessThan(300 + INTERRUPT_GRACE_MS + 1_500);
  expect(report.stopped).toBe(true);
  // Each of the two frames was sent once, and not resent after its 1 s back-off (the Ctrl-C came first).
  expect(sends).toBe(2);
});

it('stops sending at a 401 or 403 (the server refuses this client, as it will every frame), saying so', async () => {
  for (const status of [401, 403]) {
    let sends = 0;
    const report = await workload({
      requests: 1000,
      concurrency: 2,
      timeoutMs: 1000,
      send: async () => {
        sends++;
        return { status, body: '{"error":"unauthorized: missing or wrong bearer token"}' };
      },
    });
    // The two frames out when the first refusal came; none after.
    expect(sends).toBe(2);
    expect(report).toMatchObject({ requests: 2, rejected: 2 });
    expect(formatWorkloadReport(report)).toContain(
      `stopped, no more frames sent: the server refuses this client: HTTP ${status} {"error":"unauthorized: missing or wrong bearer token"}`,
    );
  }
});

it('resends a frame whose connection was reset: a resend answered 200 is a frame like any other, its repeated answers duplicates', async () => {
  const reset = () =>
    new TypeError('fetch failed', {
      cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
    });
  const pending: ResponseMessage[] = [];
  const answer = (request_id: string) => pending.push(amyAnswer(request_id));
  const poll = async () => {
    await new Promise((r) => setTimeout(r, 5));
    return pending.splice(0);
  };
  // Request 0: the reset send reached the server, which answers it after the resend went out (about 0.45 s)
  // and (a Function URL: no 409) takes the resend as a second frame. Request 1: the reset send never reached
  // the server. (A frame answered before its resend is not resent: see below.)
  const sends = new Map<string, number>();
  const report = await workload({
    requests: 2,
    concurrency: 1,
    timeoutMs: 5000,
    send: async (_url, body) => {
      const { request_id } = JSON.parse(body) as { request_id: string };
      const n = (sends.get(request_id) ?? 0) + 1;
      sends.set(request_id, n);
      if (n === 1) {
        if (request_id.endsWith('-0')) setTimeout(() => answer(request_id), 700);
        throw reset();
      }
      answer(request_id);
      return { status: 200, body: JSON.stringify({ request_id, faces: 1 }) };
    },
    responses: { poll },
  });
  expect([...sends.values()]).toEqual([2, 2]);
  expect(report).toMatchObject({ answered: 2, failed: 0, rejected: 0, resetResends: 2, duplicates: 1 });
  expect(report.accuracy).toEqual({ faces: 2, correct: 2, noFace: 0 });
  // No resends allowed: the reset is a failure to send, as before.
  const once = await workload({
    requests: 1,
    maxRetries: 0,
    timeoutMs: 500,
    send: async () => Promise.reject(reset()),
  });
  expect(once).toMatchObject({ failed: 1, resetResends: 0 });
  expect(once.outcomes[0]!.error).toBe('fetch failed (other side closed)');
});

it('counts frames resent, not resends: a frame answered 503 three times is one frame resent', async () => {
  let sends = 0;
  const pending: ResponseMessage[] = [];
  const report = await workload({
    requests: 1,
    timeoutMs: 2000,
    send: async (_url, body) => {
      if (++sends <= 3) return { status: 503, body: '{"error":"busy"}', retryAfterSeconds: 0.01 };
      const { request_id } = JSON.parse(body) as { request_id: string };
      pending.push(answerOf(request_id, null, 0, NO_FACE));
      return { status: 200, body: JSON.stringify({ request_id, faces: 0 }) };
    },
    responses: { poll: async () => pending.splice(0) },
  });
  expect(sends).toBe(4);
  expect(report).toMatchObject({ retries: 1, reconnects: 0, resetResends: 0 });
});

/** One answer as the pipeline sends it. */
function answerOf(
  request_id: string,
  face_index: number | null,
  face_count: number,
  result: string,
): ResponseMessage {
  return {
    request_id,
    frame_id: `${request_id}-frame`,
    filename: 'f.png',
    face_index,
    face_count,
    result,
    distance: result === NO_FACE ? null : 0.3,
    box: null,
  };
}

/** Answers a test pushes to `pending`, collected by the client's polls (a long poll of 5 ms). */
/** A signal aborted `ms` from now, as a user's Ctrl-C. */
const ctrlCAfter = (ms: number): AbortSignal => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), ms);
  return controller.signal;
};

/** The answer naming the one face of frame `request_id` amy. */
const amyAnswer = (request_id: string): ResponseMessage => ({
  request_id,
  frame_id: randomUUID(),
  filename: 'f.png',
  face_index: 0,
  face_count: 1,
  result: 'amy',
  distance: 0.3,
  box: null,
});

const answersFrom = (pending: ResponseMessage[]): WorkloadOptions['responses'] => ({
  poll: async () => {
    await new Promise((r) => setTimeout(r, 5));
    return pending.splice(0);
  },
});

const resetError = () =>
  new TypeError('fetch failed', {
    cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
  });

/**
 * One frame against a fake server: `onSend(requestId, n)` answers its n-th send (or throws), pushing answers
 * to `pending`, which the client collects. Returns the report and how many sends were made.
 */
async function oneFrame(
  options: Partial<WorkloadOptions>,
  onSend: (
    requestId: string,
    n: number,
    pending: ResponseMessage[],
  ) => Awaited<ReturnType<NonNullable<WorkloadOptions['send']>>>,
) {
  const pending: ResponseMessage[] = [];
  let sends = 0;
  const report = await workload({
    requests: 1,
    ...options,
    send: async (_url, body) =>
      onSend((JSON.parse(body) as { request_id: string }).request_id, ++sends, pending),
    responses: answersFrom(pending),
  });
  return { report, sends };
}

it('a frame taken by a reset send (409 to the resend) learns its faces from the answers, before or after the 409', async () => {
  const { report } = await oneFrame({ timeoutMs: 3000 }, (request_id, n, pending) => {
    // Taken, and answered only once the resend is on its way: one face as the 409 goes out, one after.
    if (n === 1) throw resetError();
    pending.push(answerOf(request_id, 0, 2, 'amy'));
    setTimeout(() => pending.push(answerOf(request_id, 1, 2, 'amy')), 50);
    return { status: 409, body: '{"error":"request_id is already in flight"}' };
  });
  expect(report).toMatchObject({ answered: 1, failed: 0, rejected: 0, resetResends: 1, duplicates: 0 });
  expect(report.outcomes[0]).toMatchObject({ status: 200, faces: 2, results: ['amy', 'amy'] });
});

it('a frame whose every send was reset, but which was taken, counts as answered when its answers come', async () => {
  const { report, sends } = await oneFrame({ maxRetries: 2, timeoutMs: 4000 }, (request_id, n, pending) => {
    // Answered after the last resend (the resends go out at about 0.45 and 1.35 s).
    if (n === 1) setTimeout(() => pending.push(answerOf(request_id, null, 0, NO_FACE)), 2500);
    throw resetError();
  });
  expect(sends).toBe(3);
  expect(report).toMatchObject({ answered: 1, failed: 0, rejected: 0 });
  expect(report.outcomes[0]).toMatchObject({ status: 200, faces: 0, results: [NO_FACE] });
  expect(report.outcomes[0]!.error).toBeUndefined();
});

it('a frame being resent after a reset is not sent again once its answers came: the reset send was taken', async () => {
  // A server stopped as the frame went out, then restarted on its queue file: it answers the faces it held
  // while the client still waits to reconnect.
  const { report, sends } = await oneFrame({ timeoutMs: 3000 }, (request_id, _n, pending) => {
    setTimeout(() => pending.push(answerOf(request_id, 0, 1, 'amy')), 100);
    throw resetError();
  });
  expect(sends).toBe(1);
  expect(report).toMatchObject({ answered: 1, failed: 0, rejected: 0, resetResends: 0, duplicates: 0 });
  expect(report.outcomes[0]).toMatchObject({ status: 200, faces: 1, results: ['amy'] });
});

it('after a 409, a frame whose first send then failed is asked for again and reported with its real status', async () => {
  let sends = 0;
  const report = await workload({
    requests: 1,
    timeoutMs: 10_000,
    send: async () => {
      sends++;
      if (sends === 1) throw resetError();
      // In flight at the resend; then the server's detection refused it, freeing its request id.
      if (sends === 2) return { status: 409, body: '{"error":"request_id is already in flight"}' };
      return { status: 422, body: '{"error":"Image could not be decoded"}' };
    },
  });
  expect(sends).toBe(3);
  expect(report).toMatchObject({ answered: 0, rejected: 1, failed: 0, unanswered: [] });
  expect(report.outcomes[0]).toMatchObject({ status: 422, error: '{"error":"Image could not be decoded"}' });
});

it('a frame a busy server keeps refusing waits its Retry-After, then twice as long each time (up to 5 s)', async () => {
  const sentAt: number[] = [];
  const { report, sends } = await oneFrame({ maxRetries: 2, timeoutMs: 10_000 }, (request_id, n, pending) => {
    sentAt.push(performance.now());
    if (n <= 2) return { status: 503, body: '{"error":"busy"}', retryAfterSeconds: 1 };
    pending.push(answerOf(request_id, null, 0, NO_FACE));
    return { status: 200, body: JSON.stringify({ request_id, faces: 0 }) };
  });
  expect(sends).toBe(3);
  expect(report).toMatchObject({ answered: 1, failed: 0, rejected: 0, retries: 1 });
  const gaps = sentAt.slice(1).map((t, i) => t - sentAt[i]!);
  // 1 s, then 2 s (+ up to a quarter of jitter): each wait longer than the one before.
  expect(gaps[0]).toBeGreaterThanOrEqual(995);
  expect(gaps[0]).toBeLessThan(1300);
  expect(gaps[1]).toBeGreaterThanOrEqual(1995);
  expect(gaps[1]).toBeLessThan(2600);
});
