import { readFile } from 'node:fs/promises';
import {
  DisposedError,
  decodeImage,
  InvalidOptionsError,
  MtcnnDetector,
  type MtcnnNetworks,
  type RgbImage,
} from '@facerec/framework';
import { resizeRgb } from '@facerec/framework/internal';
import { describeWithSharedData, iou, sharedPath } from '@facerec/framework/testing';
import { createOnnxProvider, OnnxMtcnnNetworks } from '@facerec/provider-onnx';
import { expect, it } from 'vitest';
import { mirrorStore } from './helpers.js';

describeWithSharedData(
  'onnx MTCNN: a batch of frames of different sizes',
  ['models/upstream/pnet.pt', 'faces'],
  () => {
    it('gives exactly the detections of one frame at a time', async () => {
      const detector = createOnnxProvider({ modelStore: await mirrorStore() }).detector('mtcnn');
      const files = [
        ['face-api.js', 'bbt1.jpg'],
        ['facenet-pytorch', 'multiface.jpg'],
        ['face-api.js', 'bbt3.jpg'],
        ['face-api.js', 'bbt', 'raj', 'raj1.png'],
        ['face-api.js', 'bbt3.jpg'],
        ['face-api.js', 'test', 'white.png'],
      ];
      const images: RgbImage[] = [];
      for (const f of files) images.push(await decodeImage(await readFile(sharedPath('faces', ...f))));
      const batched = await detector.detectBatch(images);
      let faces = 0;
      for (let i = 0; i < images.length; i++) {
        const single = await detector.detect(images[i]!);
        expect(batched[i]).toEqual(single);
        faces += single.length;
      }
      expect(faces).toBeGreaterThan(10);
      await detector.dispose();
    });

    it('runs R-Net and O-Net in chunks whose rows equal one-crop runs bit for bit', async () => {
      const networks = await OnnxMtcnnNetworks.load(await mirrorStore(), 2);
      // More crops than one chunk (R-Net 64, O-Net 32), and a last chunk that is not full.
      for (const [net, size, count, rows] of [
        ['rnet', 24, 150, [0, 63, 64, 127, 128, 149]],
        ['onet', 48, 70, [0, 31, 32, 69]],
      ] as const) {
        const per = 3 * size * size;
        let seed = 7;
        const input = Float32Array.from({ length: count * per }, () => {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          return seed / 2 ** 30 - 1;
        });
        const all = await networks[net](input, count);
        for (const i of rows) {
          const one = await networks[net](input.slice(i * per, (i + 1) * per), 1);
          for (const [name, values] of Object.entries(one) as [string, Float32Array][]) {
            const width = values.length;
            const row = (all as unknown as Record<string, Float32Array>)[name]!.subarray(
              i * width,
              (i + 1) * width,
            );
            expect(Array.from(row), `${net} ${name} row ${i}`).toEqual(Array.from(values));
          }
        }
      }
      await networks.dispose();
    });

    it('runs large P-Net levels in strips, with exactly the results of whole levels', async () => {
      const store = await mirrorStore();
      // The onnx networks run P-Net levels above 128 Ki pixels in strips of about that size (several per level
      // of these frames), on their lasting session, or after a warm-up on 320×240 for levels above 192×144
      // pixels on one opened per call. The reference runs the same networks with no limit: every level whole,
      // in one call.
      const strips = createOnnxProvider({ modelStore: store }).detector('mtcnn');
      await strips.warmUp({ width: 320, height: 240 });
      const defaultStrips = createOnnxProvider({ modelStore: store }).detector('mtcnn');
      const networks = await OnnxMtcnnNetworks.load(store, 2);
      const unlimited: MtcnnNetworks = {
        pnet: (...args) => networks.pnet(...args),
        rnet: (...args) => networks.rnet(...args),
        onet: (...args) => networks.onet(...args),
        dispose: () => networks.dispose(),
      };
      const whole = new MtcnnDetector('onnx', async () => unlimited);
      const files = [
        ['face-api.js', 'bbt1.jpg'],
        ['facenet-pytorch', 'multiface.jpg'],
        ['facenet-pytorch', 'angelina_jolie.jpg'],
      ];
      let faces = 0;
      for (const f of files) {
        const image = await decodeImage(await readFile(sharedPath('faces', ...f)));
        const expected = await whole.detect(image);
        expect(await strips.detect(image)).toEqual(expected);
        expect(await defaultStrips.detect(image)).toEqual(expected);
        faces += expected.length;
      }
      // Several images of one size in one call: split per image when they exceed the size together.
      const bbt = await decodeImage(await readFile(sharedPath('faces', 'face-api.js', 'bbt3.jpg')));
      expect(await strips.detectBatch([bbt, bbt, bbt])).toEqual(await whole.detectBatch([bbt, bbt, bbt]));
      expect(faces).toBeGreaterThan(8);
      await Promise.all([strips.dispose(), defaultStrips.dispose(), whole.dispose()]);
    });

    it('finds every face of a crowded 4K frame (nine copies of one 1280×720 frame)', async () => {
      // Hundreds of thousands of P-Net numbers are left after each scale's NMS here: they were joined with
      // push(...spread), which overflowed the call stack (RangeError from detect()).
      const detector = createOnnxProvider({ modelStore: await mirrorStore() }).detector('mtcnn');
      const bbt = await decodeImage(await readFile(sharedPath('faces', 'face-api.js', 'bbt1.jpg')));
      const tile = await resizeRgb(bbt, 1280, 720);
      const grid = { width: 3 * 1280, height: 3 * 720, data: new Uint8Array(3 * 1280 * 3 * 720 * 3) };
      for (let ty = 0; ty < 3; ty++) {
        for (let tx = 0; tx < 3; tx++) {
          for (let y = 0; y < 720; y++) {
            const row = tile.data.subarray(y * 1280 * 3, (y + 1) * 1280 * 3);
            grid.data.set(row, ((ty * 720 + y) * grid.width + tx * 1280) * 3);
          }
        }
      }
      // The faces of one copy clearly above the smallest searched for (20 px): one at 19×24 px comes and goes
      // with the pyramid's levels, which differ a little between the two frame sizes.
      const single = (await detector.detect(tile)).filter((f) => f.box[2] - f.box[0] >= 40);
      const crowd = await detector.detect(grid);
      expect(single.length).toBe(4);
      expect(crowd.length).toBeGreaterThanOrEqual(36);
      // Each copy's faces, where that copy lies.
      for (let ty = 0; ty < 3; ty++) {
        for (let tx = 0; tx < 3; tx++) {
          for (const face of single) {
            const [x1, y1, x2, y2] = face.box;
            const expected: [number, number, number, number] = [
              x1 + tx * 1280,
              y1 + ty * 720,
              x2 + tx * 1280,
              y2 + ty * 720,
            ];
            expect(Math.max(...crowd.map((f) => iou(f.box, expected))), `copy ${tx},${ty}`).toBeGreaterThan(
              0.8,
            );
          }
        }
      }
      await detector.dispose();
    }, 60_000);

    it('warmUp changes no result, checks its frame size, and fails after dispose', async () => {
      const store = await mirrorStore();
      const image = await decodeImage(await readFile(sharedPath('faces', 'face-api.js', 'bbt1.jpg')));
      const cold = createOnnxProvider({ modelStore: store }).detector('mtcnn');
      const expected = await cold.detect(image);
      await cold.dispose();
      const warm = createOnnxProvider({ modelStore: store }).detector('mtcnn');
      await warm.warmUp({ width: image.width, height: image.height });
      expect(await warm.detect(image)).toEqual(expected);
      await expect(warm.warmUp({ width: 11, height: 720 })).rejects.toBeInstanceOf(InvalidOptionsError);
      await expect(warm.warmUp({ width: 1280.5, height: 720 })).rejects.toBeInstanceOf(InvalidOptionsError);
      await warm.dispose();
      await expect(warm.warmUp()).rejects.toBeInstanceOf(DisposedError);
    });
  },
);
