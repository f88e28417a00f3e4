import { mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { enrollGallery, type FaceDetector, type FaceEmbedder, type FileGallery } from '@facerec/framework';
import { sharedMirrorStore, sharedPath } from '@facerec/framework/testing';
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
