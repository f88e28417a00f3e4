import { decodeImage, encodeJpeg, encodePng, type RgbImage } from '@facerec/framework';
import { startLocalRuntime } from '@facerec/lambda-runtime';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { describe, expect, it } from 'vitest';
import { frameRequestFields } from '../src/local/requests.js';

const image = (width: number, height: number): RgbImage => ({
  width,
  height,
  data: new Uint8Array(width * height * 3).fill(128),
});
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const body = (content: unknown, requestId = 'r-1') => JSON.stringify({ content, request_id: requestId });

/** `jpeg` with `segments` APP2 segments of 60 000 bytes each inserted after its start marker. */
function withLargeSegments(jpeg: Uint8Array, segments: number): Uint8Array {
  const segment = Buffer.alloc(60_000 + 4);
  segment.writeUInt16BE(0xffe2, 0);
  segment.writeUInt16BE(60_000 + 2, 2);
  const parts = [jpeg.subarray(0, 2), ...Array.from({ length: segments }, () => segment), jpeg.subarray(2)];
  return Buffer.concat(parts);
}

/** A runtime with `detection` and a pixel budget, nothing to recognise. */
const runtimeWith = (
  detection: Parameters<typeof startLocalRuntime>[0]['detection'],
  maxInFlightPixels: number,
  extra: { maxInFlight?: number } = {},
) =>
  startLocalRuntime({
    detection,
    recognition: async () => ({ batchItemFailures: [] }),
    transport: new InMemoryQueueTransport({ queues: {} }),
    requestQueue: 'q',
    responseQueue: 'r',
    port: 0,
    maxInFlightPixels,
    ...extra,
  });

describe('local runtime: the size of a frame from its header', () => {
  it('reads width × height of PNG and JPEG headers, also past 120 kB of APP segments', async () => {
    expect(await frameRequestFields(body(base64(await encodePng(image(320, 240)))), 1)).toEqual({
      requestId: 'r-1',
      pixels: 320 * 240,
    });
    const jpeg = await encodeJpeg(image(640, 360));
    expect((await frameRequestFields(body(base64(jpeg)), 1)).pixels).toBe(640 * 360);
    const late = withLargeSegments(jpeg, 2);
    expect(late.length).toBeGreaterThan(120_000);
    expect((await frameRequestFields(body(base64(late)), 1)).pixels).toBe(640 * 360);
  });

  it('reads the size the decoder will decode, not one a crafted header shows another reader', async () => {
    // A stray byte after an APP15 segment whose data holds a 1×1 SOF marker: image-size, which this runtime used
    // before, slid onto that marker and weighed the frame at 1 pixel; libjpeg skips the byte and decodes 640×360.
    const jpeg = Buffer.from(await encodeJpeg(image(640, 360)));
    const app15 = Buffer.alloc(254);
    app15[0] = 20;
    Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x01, 0x00, 0x01]).copy(app15, 19);
    const crafted = Buffer.concat([
      jpeg.subarray(0, 2),
      Buffer.from([0xff, 0xef, 0x01, 0x00]),
      app15,
      Buffer.from([0x00]),
      jpeg.subarray(2),
    ]);
    const decoded = await decodeImage(crafted);
    expect((await frameRequestFields(body(base64(crafted)), 1)).pixels).toBe(decoded.width * decoded.height);
    expect(decoded.width * decoded.height).toBe(640 * 360);
  });

  it('counts content without a readable header as the given worst case, and a body without content as 0', async () => {
    expect(
      (await frameRequestFields(body(base64(Buffer.from('not an image at all'))), 25_000_000)).pixels,
    ).toBe(25_000_000);
    // Markup is no format the decoder takes: not parsed here (a crafted SVG cost seconds of regular expression).
    const svg = `${'<svg '.repeat(190)}'<svg >${'a'.repeat(1000)}'${'a'.repeat(100_000)}`;
    expect((await frameRequestFields(body(base64(Buffer.from(svg))), 7)).pixels).toBe(7);
    expect(await frameRequestFields(body(42), 7)).toEqual({ requestId: 'r-1', pixels: 0 });
    expect((await frameRequestFields(body(''), 7)).pixels).toBe(0);
    expect(await frameRequestFields('{not json', 7)).toEqual({ requestId: undefined, pixels: 0 });
    expect(
      (await frameRequestFields(JSON.stringify({ content: 'AA==', request_id: 5 }), 7)).requestId,
    ).toBeUndefined();
  });
});

describe('local runtime: admission by pixels', () => {
  it('runs frames together only while their pixels fit the budget; a larger frame runs alone', async () => {
    const small = base64(await encodePng(image(100, 100)));
    const large = base64(await encodePng(image(300, 300)));
    let running = 0;
    let most = 0;
    const seen: { pixels: number; together: number }[] = [];
    // The first frame waits for a second to run beside it (so that the sends need not overlap in time).
    let paired: () => void = () => {};
    const pair = new Promise<void>((resolve) => (paired = resolve));
    const runtime = await runtimeWith(
      async (event) => {
        running++;
        most = Math.max(most, running);
        if (running === 2) paired();
        const { content } = JSON.parse(event.body ?? '{}') as { content: string };
        seen.push({ pixels: content === large ? 90_000 : 10_000, together: running });
        await Promise.race([pair, new Promise((r) => setTimeout(r, 10_000))]);
        await new Promise((r) => setTimeout(r, 50));
        running--;
        return { statusCode: 422, headers: {}, body: '{"error":"test"}' };
      },
      20_000,
      { maxInFlight: 16 },
    );
    try {
      const post = (content: string, id: string) =>
        fetch(runtime.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: body(content, id),
        });
      // Six small frames (10 000 pixels each, two fit at once), then a large one (90 000: over the budget).
      const statuses = await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => post(small, `s-${i}`)),
        post(large, 'l-0'),
      ]);
      expect(statuses.map((r) => r.status)).toEqual(Array(7).fill(422));
      expect(most).toBe(2);
      expect(seen.find((s) => s.pixels === 90_000)?.together).toBe(1);
      const health = (await (await fetch(`${runtime.url}/health`)).json()) as {
        admission: { pixelsInFlight: number; maxInFlightPixels: number };
      };
      expect(health.admission).toMatchObject({ pixelsInFlight: 0, maxInFlightPixels: 20_000 });
    } finally {
      await runtime.close();
    }
  });

  it('refuses a budget that is not a positive integer', async () => {
    await expect(runtimeWith(async () => ({ statusCode: 200, headers: {}, body: '{}' }), 0)).rejects.toThrow(
      'maxInFlightPixels must be a positive integer, got 0',
    );
  });
});

describe('local runtime: stopping with frames waiting for the pixel budget', () => {
  it('answers the waiting frames 503 (neither detected nor queued) when a drain runs out', async () => {
    const content = base64(await encodePng(image(100, 100)));
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const detected: string[] = [];
    const runtime = await runtimeWith(async (event) => {
      detected.push((JSON.parse(event.body ?? '{}') as { request_id: string }).request_id);
      await held;
      return { statusCode: 422, headers: {}, body: '{"error":"test"}' };
    }, 10_000);
    const post = (id: string) =>
      fetch(runtime.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(content, id),
      }).then(
        async (r) => ({ status: r.status, text: await r.text() }),
        () => ({ status: 0, text: 'connection closed' }),
      );
    const sent = ['w-0', 'w-1', 'w-2'].map(post);
    // One frame fits the budget; the other two wait for it.
    for (let i = 0; i < 100 && runtime.backlog().detecting < 3; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(detected).toEqual(['w-0']);
    const draining = runtime.drain({ timeoutMs: 200 });
    // The detection ends after the stop closed the connections (200 ms of waiting, 1 s of grace): the drain
    // waits for it, then counts it as cut off (its client got no answer).
    setTimeout(release, 1_600);
    const report = await draining;
    expect(report).toMatchObject({ drained: false, cutOff: 1, left: { detecting: 0 } });
    const answers = await Promise.all(sent);
    expect(detected).toEqual(['w-0']);
    expect(answers[0]).toEqual({ status: 0, text: 'connection closed' });
    const waiting = answers.slice(1);
    expect(waiting.map((a) => a.status)).toEqual([503, 503]);
    expect(waiting[0]!.text).toMatch(/shutting down/);
  });
});
