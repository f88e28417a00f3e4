import { readFileSync } from 'node:fs';
import zlib from 'node:zlib';
import sharp, { type Color } from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  ImageTooLargeError,
  InvalidImageError,
  InvalidInputError,
  InvalidOptionsError,
  UnsupportedImageFormatError,
} from '../errors.js';
import { seededRandom } from '../testing/random.js';
import { describeWithSharedData, sharedPath } from '../testing/shared-data.js';
import {
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  decodeImage,
  decoderMessage,
  encodeJpeg,
  encodePng,
  MAX_IMAGE_SIDE,
  MAX_JPEG_SCANS,
  readImageFile,
} from './decode.js';
import { detectImageFormat } from './format.js';
import type { RgbImage } from './types.js';

const JOLIE = 'faces/facenet-pytorch/angelina_jolie.jpg';
const FACE1 = 'faces/face-api.js/test/face1.png';
const FACE_RECT = 'faces/face-api.js/test/face_rectangular.png';

/** A grey PNG (`channels` 1) or grey + alpha PNG (`channels` 2) of raw `pixels`, checked to be stored so. */
async function greyPng(pixels: Uint8Array, width: number, height: number, channels: 1 | 2): Promise<Buffer> {
  const png = await sharp(pixels, { raw: { width, height, channels } }).toColourspace('b-w').png().toBuffer();
  expect((await sharp(png).metadata()).channels).toBe(channels);
  return png;
}

/** Runs `decodeImage` expecting a rejection, and returns the error with how long the rejection took. */
async function rejection(bytes: Uint8Array, limits?: DecodeLimits): Promise<{ error: unknown; ms: number }> {
  const start = performance.now();
  try {
    await decodeImage(bytes, limits);
  } catch (error) {
    return { error, ms: performance.now() - start };
  }
  throw new Error('decodeImage resolved but was expected to reject');
}

/** Deterministic bytes, so a failure reproduces. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  return Uint8Array.from({ length }, () => Math.floor(random() * 256));
}

function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (native) return native(bytes);
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, body: Uint8Array): Buffer {
  const typeAndBody = Buffer.concat([Buffer.from(type, 'latin1'), body]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndBody));
  return Buffer.concat([length, typeAndBody, crc]);
}

/** A PNG whose IHDR claims `width`×`height` RGB but whose IDAT holds only one scanline's worth of data. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit truecolour, deflate, adaptive filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(16))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

const solid = (width: number, height: number, channels: 3 | 4, background: Color) =>
  sharp({ create: { width, height, channels, background } });

describe('decodeImage: formats and pixel conversion', () => {
  it('drops alpha without blending it into the colour', async () => {
    const rgba = new Uint8Array([255, 0, 0, 0, 0, 255, 0, 128, 0, 0, 255, 255, 10, 20, 30, 7]);
    const png = await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    expect((await sharp(png).metadata()).channels).toBe(4);
    const image = await decodeImage(png);
    expect(image).toEqual({
      width: 2,
      height: 2,
      data: new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]),
    });
  });

  it('expands grey PNGs to RGB', async () => {
    const grey = new Uint8Array([0, 50, 100, 150, 200, 255]);
    const png = await greyPng(grey, 3, 2, 1);
    const image = await decodeImage(png);
    expect([image.width, image.height]).toEqual([3, 2]);
    expect(Array.from(image.data)).toEqual(Array.from(grey).flatMap((v) => [v, v, v]));
  });

  it('expands grey + alpha PNGs to RGB', async () => {
    const la = new Uint8Array([10, 0, 200, 255]);
    const png = await greyPng(la, 2, 1, 2);
    const image = await decodeImage(png);
    expect(Array.from(image.data)).toEqual([10, 10, 10, 200, 200, 200]);
  });

  it('reduces 16-bit PNGs to 8 bits', async () => {
    const png = await solid(4, 3, 3, { r: 255, g: 128, b: 0 }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png).metadata()).depth).toBe('ushort');
    const image = await decodeImage(png);
    expect(image.data.length).toBe(4 * 3 * 3);
    expect(Array.from(image.data.subarray(0, 3))).toEqual([255, 128, 0]);
  });

  it('decodes lossless WebP exactly', async () => {
    const rgb = new Uint8Array(Array.from({ length: 5 * 4 * 3 }, (_, i) => (i * 37) % 256));
    const webp = await sharp(rgb, { raw: { width: 5, height: 4, channels: 3 } })
      .webp({ lossless: true })
      .toBuffer();
    expect(detectImageFormat(webp)).toBe('webp');
    expect(await decodeImage(webp)).toEqual({ width: 5, height: 4, data: rgb });
  });

  it('applies EXIF orientation 6 (rotate 90° clockwise)', async () => {
    // Left half red, right half blue: after a clockwise quarter turn red is on top, blue at the bottom.
    const width = 40;
    const height = 20;
    const raw = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) raw.set(x < width / 2 ? [255, 0, 0] : [0, 0, 255], (y * width + x) * 3);
    }
    const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const image = await decodeImage(jpeg);
    expect([image.width, image.height]).toEqual([height, width]);
    const at = (x: number, y: number) =>
      Array.from(image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));
    const [topR, , topB] = at(10, 5);
    const [bottomR, , bottomB] = at(10, 34);
    expect(topR).toBeGreaterThan(200);
    expect(topB).toBeLessThan(60);
    expect(bottomB).toBeGreaterThan(200);
    expect(bottomR).toBeLessThan(60);
  });

  it('converts CMYK JPEGs to RGB', async () => {
    const jpeg = await solid(4, 3, 3, { r: 255, g: 0, b: 0 }).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(jpeg).metadata()).space).toBe('cmyk');
    const image = await decodeImage(jpeg);
    expect(image.data.length).toBe(4 * 3 * 3);
    const [r, g, b] = image.data;
    expect(r).toBeGreaterThan(200);
    expect(g).toBeLessThan(40);
    expect(b).toBeLessThan(40);
  });

  it('accepts a Buffer and a plain Uint8Array alike and returns a plain Uint8Array', async () => {
    const png = await solid(3, 2, 3, { r: 1, g: 2, b: 3 }).png().toBuffer();
    const fromBuffer = await decodeImage(png);
    const fromArray = await decodeImage(new Uint8Array(png));
    expect(fromBuffer).toEqual(fromArray);
    expect(Object.getPrototypeOf(fromBuffer.data)).toBe(Uint8Array.prototype);
  });
});

describeWithSharedData('decodeImage: shared photos', [JOLIE, FACE1, FACE_RECT], () => {
  it.each([
    [JOLIE, 1665, 2048],
    [FACE1, 150, 150],
    [FACE_RECT, 122, 178],
  ])('decodes %s to %i×%i RGB', async (file, width, height) => {
    const image = await decodeImage(readFileSync(sharedPath(file)));
    expect(image.width).toBe(width);
    expect(image.height).toBe(height);
    expect(image.data.length).toBe(width * height * 3);
  });
});

describe('decodeImage: rejections are typed and fast', () => {
  const fast = (ms: number) => expect(ms).toBeLessThan(1000);

  it('refuses random non-image bytes as InvalidImageError', async () => {
    const bytes = pseudoRandomBytes(4096, 42);
    expect(detectImageFormat(bytes)).toBeUndefined();
    const { error, ms } = await rejection(bytes);
    expect(error).toBeInstanceOf(InvalidImageError);
    expect(InvalidImageError.isInstance(error)).toBe(true);
    fast(ms);
  });

  it('refuses empty input as InvalidImageError', async () => {
    const { error } = await rejection(new Uint8Array(0));
    expect(error).toBeInstanceOf(InvalidImageError);
  });

  it('refuses non-byte input as InvalidInputError', async () => {
    await expect(decodeImage('image.jpg' as unknown as Uint8Array)).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('refuses an SVG document without rendering it', async () => {
    const svg = Buffer.from(
      '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">' +
        '<rect width="100" height="100" fill="red"/></svg>',
    );
    const { error, ms } = await rejection(svg);
    expect(error).toBeInstanceOf(UnsupportedImageFormatError);
    expect((error as UnsupportedImageFormatError).format).toBe('svg');
    expect((error as UnsupportedImageFormatError).supported).toEqual(['jpeg', 'png', 'webp']);
    fast(ms);
    const bare = await rejection(Buffer.from('\ufeff  <svg xmlns="http://www.w3.org/2000/svg"/>'));
    expect((bare.error as UnsupportedImageFormatError).format).toBe('svg');
  });

  it('refuses a GIF', async () => {
    const gif = await solid(4, 4, 3, 'red').gif().toBuffer();
    const { error, ms } = await rejection(gif);
    expect(error).toBeInstanceOf(UnsupportedImageFormatError);
    expect((error as UnsupportedImageFormatError).format).toBe('gif');
    fast(ms);
  });

  it('refuses TIFF, BMP, HEIF and AVIF by signature', async () => {
    const tiff = await solid(4, 4, 3, 'red').tiff().toBuffer();
    const bmp = Buffer.alloc(54);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(54, 2);
    bmp.writeUInt32LE(40, 14);
    const ftyp = (brand: string, compatible: string[]) => {
      const box = Buffer.alloc(16 + 4 * compatible.length);
      box.writeUInt32BE(box.length, 0);
      box.write(`ftyp${brand}`, 4, 'latin1');
      compatible.forEach((b, i) => {
        box.write(b, 16 + 4 * i, 'latin1');
      });
      return Buffer.concat([box, Buffer.alloc(32)]);
    };
    const cases: [Uint8Array, string][] = [
      [tiff, 'tiff'],
      [bmp, 'bmp'],
      [ftyp('heic', ['mif1', 'heic']), 'heif'],
      [ftyp('mif1', ['mif1', 'avif']), 'avif'],
      [ftyp('avif', ['avif']), 'avif'],
    ];
    for (const [bytes, format] of cases) {
      const { error, ms } = await rejection(bytes);
      expect(error, format).toBeInstanceOf(UnsupportedImageFormatError);
      expect((error as UnsupportedImageFormatError).format).toBe(format);
      fast(ms);
    }
  });

  it('refuses a truncated PNG as InvalidImageError with the sharp error as cause', async () => {
    const rgb = pseudoRandomBytes(64 * 64 * 3, 7);
    const png = await sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } })
      .png()
      .toBuffer();
    const { error, ms } = await rejection(png.subarray(0, png.length >> 1));
    expect(error).toBeInstanceOf(InvalidImageError);
    expect((error as InvalidImageError).format).toBe('png');
    expect((error as InvalidImageError).cause).toBeInstanceOf(Error);
    fast(ms);
  });

  it("puts libvips' repeated, multi-line messages on one line, each once (decoderMessage)", () => {
    const repeated = ['VipsJpeg: premature end of JPEG file', 'VipsJpeg: Bogus Huffman table definition']
      .flatMap((line) => [line, line, line])
      .join('\n');
    expect(decoderMessage(new Error(`${repeated}\n`))).toBe(
      'VipsJpeg: premature end of JPEG file; VipsJpeg: Bogus Huffman table definition',
    );
    expect(decoderMessage(new Error('a\nb\nc\nd\na'))).toBe('a; b; c; …');
    expect(decoderMessage('plain')).toBe('plain');
    // sharp prefixes libvips' first line, which libvips then repeats alone: said once.
    expect(
      decoderMessage(
        new Error(
          'Input buffer has corrupt header: VipsJpeg: premature end of JPEG image\nVipsJpeg: premature end of JPEG image',
        ),
      ),
    ).toBe('Input buffer has corrupt header: VipsJpeg: premature end of JPEG image');
  });

  it('names a JPEG cut inside its header once, in one line', async () => {
    const jpeg = await solid(64, 64, 3, 'red').jpeg().toBuffer();
    // Cut just before the scan (its start-of-scan marker, FF DA): every header segment and no pixel data.
    const { error } = await rejection(jpeg.subarray(0, jpeg.indexOf(Buffer.from([0xff, 0xda]))));
    expect(error).toBeInstanceOf(InvalidImageError);
    expect((error as InvalidImageError).message.match(/premature end of JPEG/gi)).toHaveLength(1);
  });

  it('refuses bytes that claim one format but are another as InvalidImageError', async () => {
    // A JPEG signature followed by a PNG: libvips would sniff it differently from us, or fail to parse it.
    const png = await solid(4, 4, 3, 'red').png().toBuffer();
    const { error } = await rejection(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), png]));
    expect(error).toBeInstanceOf(InvalidImageError);
  });

  it('refuses a PNG whose header claims 20000×20000 from the header alone', async () => {
    const png = pngClaiming(20000, 20000);
    expect(png.length).toBeLessThan(200);
    const { error, ms } = await rejection(png);
    expect(error).toBeInstanceOf(ImageTooLargeError);
    expect(error).toMatchObject({
      limit: 'pixels',
      actual: 400_000_000,
      maximum: DEFAULT_DECODE_LIMITS.maxPixels,
    });
    fast(ms);
  });

  it('refuses a side longer than 65,535 px from the header alone, within the pixel limit', async () => {
    // 1×25,000,000 as a real PNG is 97 KB and took libvips 15 s to decode, line by line.
    for (const [w, h] of [
      [1, 25_000_000],
      [25_000_000, 1],
    ] as const) {
      const { error, ms } = await rejection(pngClaiming(w, h));
      expect(error).toBeInstanceOf(InvalidImageError);
      expect((error as Error).message).toBe(
        `Image ${w}×${h} has a side longer than ${MAX_IMAGE_SIDE} pixels, the longest decoded`,
      );
      fast(ms);
    }
  });

  it('refuses a JPEG with more scans than encoders write, before decoding it', async () => {
    const jpeg = await solid(64, 64, 3, 'red').jpeg({ progressive: true }).toBuffer();
    expect((await decodeImage(jpeg)).width).toBe(64);
    // A comment segment after SOI holding start-of-scan markers: counted as scans would be (each a pass over
    // the whole image when real: 2,000 of them took 16 s at 25 megapixels).
    const markers = Buffer.alloc((MAX_JPEG_SCANS + 1) * 2);
    for (let i = 0; i < markers.length; i += 2) markers.set([0xff, 0xda], i);
    const comment = Buffer.concat([
      Buffer.from([0xff, 0xfe, (markers.length + 2) >> 8, (markers.length + 2) & 0xff]),
      markers,
    ]);
    const crafted = Buffer.concat([jpeg.subarray(0, 2), comment, jpeg.subarray(2)]);
    const { error, ms } = await rejection(crafted);
    expect(error).toBeInstanceOf(InvalidImageError);
    expect((error as Error).message).toMatch(/^JPEG with more than 100 scans/);
    fast(ms);
  });

  it('refuses a crafted PNG that is within the pixel limit but has no pixel data as InvalidImageError', async () => {
    const { error, ms } = await rejection(pngClaiming(2000, 2000));
    expect(error).toBeInstanceOf(InvalidImageError);
    fast(ms);
  });

  it('checks the byte limit before anything else', async () => {
    const bytes = new Uint8Array(DEFAULT_DECODE_LIMITS.maxBytes + 1);
    const { error, ms } = await rejection(bytes);
    expect(error).toBeInstanceOf(ImageTooLargeError);
    expect(error).toMatchObject({
      limit: 'bytes',
      actual: bytes.length,
      maximum: DEFAULT_DECODE_LIMITS.maxBytes,
    });
    fast(ms);
  });
});

describe('decodeImage: limits', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_DECODE_LIMITS).toEqual({ maxBytes: 10 * 1024 * 1024, maxPixels: 25_000_000 });
    expect(Object.isFrozen(DEFAULT_DECODE_LIMITS)).toBe(true);
  });

  it('honours custom limits', async () => {
    const png = await solid(20, 10, 3, 'red').png().toBuffer();
    await expect(decodeImage(png, { maxPixels: 200, maxBytes: png.length })).resolves.toMatchObject({
      width: 20,
      height: 10,
    });
    await expect(decodeImage(png, { maxPixels: 199 })).rejects.toMatchObject({
      name: 'ImageTooLargeError',
      limit: 'pixels',
      actual: 200,
      maximum: 199,
    });
    await expect(decodeImage(png, { maxBytes: png.length - 1 })).rejects.toMatchObject({
      name: 'ImageTooLargeError',
      limit: 'bytes',
      actual: png.length,
    });
    // A raised pixel limit lets through what the default refuses, up to the header check.
    const { error } = await rejection(pngClaiming(20000, 20000), { maxPixels: 400_000_000 });
    expect(error).toBeInstanceOf(InvalidImageError);
  });

  it.each<[string, unknown]>([
    ['zero maxBytes', { maxBytes: 0 }],
    ['negative maxPixels', { maxPixels: -1 }],
    ['fractional maxBytes', { maxBytes: 1.5 }],
    ['NaN maxPixels', { maxPixels: Number.NaN }],
    ['infinite maxBytes', { maxBytes: Number.POSITIVE_INFINITY }],
    ['string maxBytes', { maxBytes: '10' }],
    ['unknown key', { maxSize: 10 }],
    ['null limits', null],
  ])('refuses %s with InvalidOptionsError', async (_, limits) => {
    const png = await solid(2, 2, 3, 'red').png().toBuffer();
    const error = await rejection(png, limits as DecodeLimits).then((r) => r.error);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).component).toBe('decodeImage');
  });

  it('readImageFile rejects (never throws) for bad limits or a file that is no path or stream, naming itself', async () => {
    let settled: unknown;
    // A throw before the promise would escape .catch() and end a script.
    const call = () => readImageFile('x.png', { maxByts: 1 } as DecodeLimits).catch((e: unknown) => e);
    settled = await call();
    expect(settled).toBeInstanceOf(InvalidOptionsError);
    expect((settled as Error).message).toMatch(/^readImageFile: /);
    settled = await readImageFile(42 as never).catch((e: unknown) => e);
    expect(settled).toBeInstanceOf(InvalidOptionsError);
    expect((settled as Error).message).toBe(
      'file: must be a path (a string) or a stream of bytes, not number',
    );
  });
});

describe('encodePng / encodeJpeg', () => {
  const gradient: RgbImage = {
    width: 16,
    height: 8,
    data: new Uint8Array(Array.from({ length: 16 * 8 * 3 }, (_, i) => (i * 5) % 256)),
  };

  it('round-trips PNG exactly', async () => {
    const png = await encodePng(gradient);
    expect(detectImageFormat(png)).toBe('png');
    expect(await decodeImage(png)).toEqual(gradient);
  });

  it('refuses what is no RgbImage, saying what it is (the one RgbImage check of every component)', async () => {
    await expect(encodePng(new Uint8Array([0x89, 0x50]) as unknown as RgbImage)).rejects.toThrow(
      'encodePng: image is encoded bytes, not an RgbImage (decoded pixels): decode it first, decodeImage(bytes)',
    );
    await expect(encodeJpeg({ ...gradient, data: new Uint8Array(3) })).rejects.toThrow(
      'encodeJpeg: image.data has 3 bytes; a 16×8 RGB image needs 384',
    );
    // Other libraries' images and channel counts, said with what to pass instead.
    const refused = (image: unknown) => encodePng(image as RgbImage);
    await expect(refused({ ...gradient, data: new Uint8Array(16 * 8 * 4) })).rejects.toThrow(
      'image.data has 512 bytes; a 16×8 RGB image needs 384 (4 bytes per pixel: RGBA? drop the alpha channel)',
    );
    await expect(refused({ ...gradient, data: new Uint8Array(16 * 8) })).rejects.toThrow(
      '(1 byte per pixel: greyscale? repeat it in 3 channels)',
    );
    await expect(refused({ ...gradient, data: new Uint8ClampedArray(16 * 8 * 4) })).rejects.toThrow(
      'image.data must be a Uint8Array of RGB bytes (this one holds RGBA, as a canvas ImageData does: drop every fourth byte)',
    );
    await expect(refused({ ...gradient, data: new Uint8ClampedArray(16 * 8 * 3) })).rejects.toThrow(
      'image.data must be a Uint8Array (for a Uint8ClampedArray of RGB bytes: new Uint8Array(data.buffer, data.byteOffset, data.length))',
    );
    await expect(refused({ shape: [8, 16, 3], dtype: 'int32' })).rejects.toThrow(
      /image is a tensor, not an RgbImage/,
    );
    await expect(
      refused({ data: gradient.data, info: { width: 16, height: 8, channels: 3 } }),
    ).rejects.toThrow(/image is sharp's \{ data, info \}, not an RgbImage/);
    await expect(refused({ ...gradient, width: '16' })).rejects.toThrow(
      'image.width is the string "16": it must be a whole number ≥ 1',
    );
    await expect(refused({ ...gradient, height: 0 })).rejects.toThrow(
      'image has invalid dimensions 16×0 (whole numbers ≥ 1)',
    );
  });

  it('encodes JPEG close to the input at quality 95', async () => {
    const flat: RgbImage = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(120) };
    const decoded = await decodeImage(await encodeJpeg(flat, 95));
    expect([decoded.width, decoded.height]).toEqual([16, 16]);
    const worst = Math.max(...decoded.data.map((v, i) => Math.abs(v - flat.data[i]!)));
    expect(worst).toBeLessThanOrEqual(2);
  });

  it('refuses malformed images and bad quality', async () => {
    const short = { width: 4, height: 4, data: new Uint8Array(10) };
    await expect(encodePng(short)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(encodeJpeg(short)).rejects.toBeInstanceOf(InvalidInputError);
    for (const quality of [0, 101, 50.5]) {
      await expect(encodeJpeg(gradient, quality)).rejects.toBeInstanceOf(InvalidOptionsError);
    }
  });
});
