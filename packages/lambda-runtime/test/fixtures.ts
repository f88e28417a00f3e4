import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  decodeImage,
  encodeJpeg,
  enrollGallery,
  type FaceDetector,
  type FaceEmbedder,
  type FileGallery,
} from '@facerec/framework';
import { sharedMirrorStore, sharedPath } from '@facerec/framework/testing';
import type { FaceMessage } from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';

/** Every file the pipeline tests need from the shared data. */
export const PIPELINE_DATA = ['faces/face-api.js/bbt', 'models/upstream/pnet.pt'];

export interface PipelineParts {
  detector: FaceDetector;
  embedder: FaceEmbedder;
  gallery: FileGallery;
}

let parts: Promise<PipelineParts> | undefined;

/** Links images `numbers` of every bbt identity into a fresh folder `<dir>/<identity>/`. */
export function bbtSubset(numbers: readonly number[]): string {
  const root = mkdtempSync(path.join(tmpdir(), 'facerec-bbt-'));
  const bbt = sharedPath('faces', 'face-api.js', 'bbt');
  for (const identity of readdirSync(bbt)) {
    mkdirSync(path.join(root, identity));
    for (const n of numbers) {
      symlinkSync(
        path.join(bbt, identity, `${identity}${n}.png`),
        path.join(root, identity, `${identity}${n}.png`),
      );
    }
  }
  return root;
}

/**
 * Real models, loaded once per test file: MTCNN and the face-api embedder on onnxruntime, and a gallery of
 * bbt images 1–2 of every identity (threshold 0.5 on normalised descriptors).
 */
export function pipelineParts(): Promise<PipelineParts> {
  parts ??= (async () => {
    const provider = createOnnxProvider({ modelStore: await sharedMirrorStore() });
    const embedder = await provider.embedder('faceapi-resnet');
    const detector = provider.detector('mtcnn');
    const { gallery } = await enrollGallery({ root: bbtSubset([1, 2]), detector, embedder, threshold: 0.5 });
    return { detector, embedder, gallery };
  })();
  return parts;
}

/** A bbt image as base64. */
export async function bbtImage(identity: string, n: number): Promise<string> {
  return (
    await readFile(sharedPath('faces', 'face-api.js', 'bbt', identity, `${identity}${n}.png`))
  ).toString('base64');
}

/**
 * The request-queue message the detection handler makes for bbt image `n` of `identity` (one face): its crop
 * cut by the real detector, a new frame id.
 */
export async function bbtFaceMessage(
  identity: string,
  n: number,
  requestId = `${identity}${n}`,
): Promise<FaceMessage> {
  const { detector, embedder } = await pipelineParts();
  const image = await decodeImage(
    await readFile(sharedPath('faces', 'face-api.js', 'bbt', identity, `${identity}${n}.png`)),
  );
  const [found] = await detector.detectFaces([image], { crop: embedder.preprocessing.crop });
  const { faces, crops } = found!;
  return {
    request_id: requestId,
    frame_id: randomUUID(),
    filename: `${identity}${n}.png`,
    face_index: 0,
    face_count: 1,
    box: faces[0]!.box,
    score: faces[0]!.score,
    crop: Buffer.from(await encodeJpeg(crops[0]!.image, 90)).toString('base64'),
    crop_policy: embedder.preprocessing.crop,
  };
}
