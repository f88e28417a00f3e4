import type { FaceDetection, FaceDetector } from '../contracts/detector.js';
import { assertRgbImage } from '../contracts/validate.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { DisposedError } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import { runMtcnnCascade } from './cascade.js';
import { extractFace, type FaceCrop, selectFace } from './extract.js';
import type { MtcnnNetworks } from './networks.js';
import { type MtcnnOptions, type ResolvedMtcnnOptions, resolveMtcnnOptions } from './options.js';
import { FrameSampling } from './sampling.js';

/** Detections and crops for one image. */
export interface DetectedFaces {
  readonly faces: FaceDetection[];
  readonly crops: FaceCrop[];
}

/**
 * The MTCNN {@link FaceDetector}, independent of any runtime: it owns option handling, input validation, the
 * cascade, face selection, cropping and the dispose state. A provider supplies only the three networks,
 * loaded once behind the promise it passes in.
 *
 * @example
 * const detector = new MtcnnDetector('onnx', loadOnnxNetworks(), { minFaceSize: 40 });
 * const { faces, crops } = await detector.detectFaces(image);
 */
export class MtcnnDetector implements FaceDetector {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly modelId = 'mtcnn';
  readonly provider: string;
  readonly options: Readonly<ResolvedMtcnnOptions>;
  #networks: Promise<MtcnnNetworks> | undefined;
  readonly #sampling = new FrameSampling();
  /** Calls run one at a time: they share the resampling memory, and both compete for the same cores anyway. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(provider: string, networks: Promise<MtcnnNetworks>, options: MtcnnOptions = {}) {
    this.provider = provider;
    this.options = Object.freeze(resolveMtcnnOptions(options, `${provider} mtcnn`));
    // Load failures surface on the first call; keep Node from reporting them as unhandled meanwhile.
    networks.catch(() => undefined);
    this.#networks = networks;
  }

  /** Resolves once the networks are loaded (models load at construction; this lets callers wait for it). */
  async ready(): Promise<void> {
    await this.#nets();
  }

  async #nets(): Promise<MtcnnNetworks> {
    if (!this.#networks) throw new DisposedError(`${this.provider} mtcnn detector`);
    return this.#networks;
  }

  async detect(image: RgbImage): Promise<FaceDetection[]> {
    return (await this.detectBatch([image]))[0]!;
  }

  async detectBatch(images: readonly RgbImage[]): Promise<FaceDetection[][]> {
    images.forEach((image, i) => {
      assertRgbImage(image, images.length > 1 ? `image ${i}` : 'image');
    });
    const networks = await this.#nets();
    if (images.length === 0) return [];
    const run = this.#queue.then(() => runMtcnnCascade(images, networks, this.options, this.#sampling));
    this.#queue = run.catch(() => undefined);
    const all = await run;
    if (this.options.keepAll) return all;
    return all.map((faces, i) =>
      selectFace(faces, this.options.selectionMethod, images[i]!, this.options.probabilityThreshold),
    );
  }

  /** Detects faces in each image and cuts them out at `imageSize` with `margin`. */
  async detectFaces(images: readonly RgbImage[]): Promise<DetectedFaces[]> {
    const detections = await this.detectBatch(images);
    return detections.map((faces, i) => ({
      faces,
      crops: faces.map((f) => extractFace(images[i]!, f, this.options)),
    }));
  }

  async dispose(): Promise<void> {
    const networks = this.#networks;
    this.#networks = undefined;
    if (networks) await (await networks.catch(() => undefined))?.dispose();
  }
}
