import type {
  DetectedFaces,
  DetectFacesOptions,
  FaceDetection,
  FaceDetector,
  FiveLandmarks,
  WarmUpFrame,
} from '../contracts/detector.js';
import { assertRgbImage } from '../contracts/validate.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { DisposedError, InvalidInputError, InvalidOptionsError } from '../errors.js';
import { resizeRgb } from '../image/decode.js';
import type { RgbImage } from '../image/types.js';
import { MTCNN } from '../registry/builtin.js';
import { type DetectorImplementation, implementDetector } from '../registry/provider.js';
import type { ModelLoadContext } from '../registry/types.js';
import { pyramidLevels, runMtcnnCascade } from './cascade.js';
import { parseDetectFacesOptions } from './crop.js';
import { cutFace, selectFace } from './extract.js';
import type { MtcnnNetworks } from './networks.js';
import { type MtcnnOptions, type ResolvedMtcnnOptions, resolveMtcnnOptions } from './options.js';
import { FrameSampling } from './sampling.js';

/** Candidates {@link MtcnnDetector.warmUp} runs through R-Net and O-Net: about a crowded 1280-px frame's. */
const WARM_UP_CANDIDATES = { rnet: 2000, onet: 150 } as const;

/** A frame with texture everywhere (so that every stage of the cascade has some work), for warm-ups. */
function syntheticFrame(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let seed = 0x2545f491;
  for (let i = 0; i < data.length; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    data[i] = (i % 3) * 40 + ((seed >>> 24) & 127);
  }
  return { width, height, data };
}

/**
 * The MTCNN {@link FaceDetector}, independent of any runtime: it owns option handling, input validation, the
 * cascade, face selection, cropping and the dispose state. A provider supplies only the three networks,
 * loaded once behind the promise it passes in.
 *
 * @example
 * const detector = new MtcnnDetector('onnx', () => loadOnnxNetworks(), { minFaceSize: 40 });
 * const [found] = await detector.detectFaces([image], { crop: embedder.preprocessing.crop }); // found!.faces, found!.crops
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

  /**
   * `networks` is the provider's loader, called once the options are valid (so a bad option never leaves a
   * load running with nobody to own it), or an already started load.
   */
  constructor(
    provider: string,
    networks: (() => Promise<MtcnnNetworks>) | Promise<MtcnnNetworks>,
    options: MtcnnOptions = {},
  ) {
    this.provider = provider;
    this.options = Object.freeze(resolveMtcnnOptions(options, `${provider} mtcnn`));
    const loading = typeof networks === 'function' ? networks() : networks;
    // Load failures surface on the first call; keep Node from reporting them as unhandled meanwhile.
    loading.catch(() => undefined);
    this.#networks = loading;
  }

  /** Resolves once the networks are loaded (models load at construction; this lets callers wait for it). */
  async ready(): Promise<void> {
    await this.#nets();
  }

  async #nets(): Promise<MtcnnNetworks> {
    if (!this.#networks) throw new DisposedError(`${this.provider} mtcnn detector`);
    return this.#networks;
  }

  /**
   * {@link MtcnnDetector.#nets} for a run about to be queued: its failure (disposed, or a failed load) reaches
   * the caller when the run's turn comes, and is not reported by Node as unhandled meanwhile (a detection
   * called after dispose() while another ran crashed the process that way).
   */
  #loading(): Promise<MtcnnNetworks> {
    const loading = this.#nets();
    loading.catch(() => undefined);
    return loading;
  }

  /**
   * Optional: pays ahead of time the one-off cost of the first detections — the runtime growing its memory
   * (onnxruntime: most of a first 1280-px detection's ~0.5–0.8 s on 2 cores, against ~0.1 s later), the
   * resampling buffers, and the JavaScript engine compiling the cascade. It runs the cascade twice on a
   * synthetic `width`×`height` frame (the second run lets the engine optimise the hot code), then R-Net
   * and O-Net on as many candidates as a crowded frame has. A frame above the working size (`maxPixels`) warms
   * up its working copy's size, on which such frames are detected.
   * Call it at startup (e.g. in a Lambda's init phase); results are discarded, and calls are serialised with
   * detections.
   */
  async warmUp(frame: WarmUpFrame = { width: 1280, height: 720 }): Promise<void> {
    const { width, height } = frame;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 12 && height >= 12)) {
      throw new InvalidOptionsError(
        `${this.provider} mtcnn warmUp`,
        'width and height must be integers ≥ 12',
      );
    }
    // Queued before any await, as detections are, so that a dispose() right after this call waits for it
    // (it used to find the queue empty and release the networks under the warm-up).
    const loading = this.#loading();
    const run = this.#queue.then(async () => {
      const networks = await loading;
      // As detections would run it: a frame above the working size on its working copy (a 25-megapixel warm-up
      // frame took 4 s and reserved a first level of 9 megapixels that no detection ever uses).
      const working = this.#workingCopy(width, height);
      const size = working ?? { width, height, options: this.options };
      const [first] = pyramidLevels(size.width, size.height, size.options);
      networks.reserve?.(first ? first.width * first.height : 0);
      // A working copy too thin for P-Net (a 12×100,000,000 frame) is never detected: nothing to warm up there.
      if (Math.min(size.width, size.height) >= 12) {
        const image = syntheticFrame(size.width, size.height);
        for (let i = 0; i < 2; i++) await runMtcnnCascade([image], networks, size.options, this.#sampling);
      }
      await networks.rnet(new Float32Array(WARM_UP_CANDIDATES.rnet * 3 * 24 * 24), WARM_UP_CANDIDATES.rnet);
      await networks.onet(new Float32Array(WARM_UP_CANDIDATES.onet * 3 * 48 * 48), WARM_UP_CANDIDATES.onet);
    });
    this.#queue = run.catch(() => undefined);
    await run;
  }

  async detect(image: RgbImage): Promise<FaceDetection[]> {
    return (await this.detectBatch([image]))[0]!;
  }

  async detectBatch(images: readonly RgbImage[]): Promise<FaceDetection[][]> {
    if (!Array.isArray(images)) {
      throw new InvalidInputError('detectFaces: images must be an array of RgbImage (one image: [image])');
    }
    images.forEach((image, i) => {
      assertRgbImage(image, images.length > 1 ? `image ${i}` : 'image');
    });
    // Queued before any await, so that a dispose() after this call waits for its run (see dispose).
    const loading = this.#loading();
    if (images.length === 0) {
      await loading;
      return [];
    }
    const run = this.#queue.then(async () => this.#cascade(images, await loading));
    this.#queue = run.catch(() => undefined);
    const all = await run;
    if (this.options.keepAll) return all;
    return all.map((faces, i) =>
      selectFace(faces, this.options.selectionMethod, images[i]!, this.options.probabilityThreshold),
    );
  }

  /**
   * The working copy of a `width`×`height` frame above the working size (`maxPixels`): its size, and the options
   * with the minimum face size scaled alike; `undefined` for a frame within the working size.
   */
  #workingCopy(
    width: number,
    height: number,
  ): { width: number; height: number; options: ResolvedMtcnnOptions } | undefined {
    const { maxPixels } = this.options;
    if (!(maxPixels > 0 && width * height > maxPixels)) return undefined;
    const shrink = Math.sqrt(maxPixels / (width * height));
    const [w, h] = [Math.floor(width * shrink), Math.floor(height * shrink)];
    const options = { ...this.options, minFaceSize: Math.max(12, this.options.minFaceSize / (width / w)) };
    return { width: w, height: h, options };
  }

  /**
   * Runs the cascade; frames above the working size (`maxPixels`) on a downscaled copy each, their boxes and
   * landmarks mapped back. The copy also keeps the resampling tables (WebAssembly memory, which never
   * shrinks) at the working size.
   */
  async #cascade(images: readonly RgbImage[], networks: MtcnnNetworks): Promise<FaceDetection[][]> {
    const { maxPixels } = this.options;
    const large = (image: RgbImage) => maxPixels > 0 && image.width * image.height > maxPixels;
    if (!images.some(large)) return runMtcnnCascade(images, networks, this.options, this.#sampling);
    const results: FaceDetection[][] = [];
    const normal = images.flatMap((image, i) => (large(image) ? [] : [i]));
    if (normal.length > 0) {
      const found = await runMtcnnCascade(
        normal.map((i) => images[i]!),
        networks,
        this.options,
        this.#sampling,
      );
      normal.forEach((i, k) => {
        results[i] = found[k]!;
      });
    }
    for (const [i, image] of images.entries()) {
      if (!large(image)) continue;
      const copy = this.#workingCopy(image.width, image.height)!;
      // A face fits in the frame, so one whose frame's shorter side shrinks below P-Net's 12 px is below it
      // too: nothing can be found. Widening that side to 12 px instead made a 25,000,000×1 frame (73 KB as a
      // PNG) a 173-megapixel working copy: 19 GB of memory and minutes of detection.
      if (Math.min(copy.width, copy.height) < 12) {
        results[i] = [];
        continue;
      }
      const working = await resizeRgb(image, copy.width, copy.height);
      const sx = image.width / working.width;
      const sy = image.height / working.height;
      const [faces] = await runMtcnnCascade([working], networks, copy.options, this.#sampling);
      results[i] = faces!.map((face) => ({
        score: face.score,
        box: [face.box[0] * sx, face.box[1] * sy, face.box[2] * sx, face.box[3] * sy],
        landmarks: face.landmarks.map(([x, y]) => [x * sx, y * sy]) as FiveLandmarks,
      }));
    }
    return results;
  }

  /**
   * Detects faces in each image and, when `options.crop` is given (an embedder's `preprocessing.crop`), cuts
   * every face out with that policy.
   */
  async detectFaces(images: readonly RgbImage[], options: DetectFacesOptions = {}): Promise<DetectedFaces[]> {
    const crop = parseDetectFacesOptions(options);
    const detections = await this.detectBatch(images);
    return detections.map((faces, i) => ({
      faces,
      crops: crop ? faces.map((f) => cutFace(images[i]!, f, crop)) : [],
    }));
  }

  /** Releases the networks once the runs already started or queued have finished; later calls are refused. */
  async dispose(): Promise<void> {
    const networks = this.#networks;
    this.#networks = undefined;
    await this.#queue;
    if (networks) await (await networks.catch(() => undefined))?.dispose();
  }
}

/**
 * A provider's implementation of the registry's `mtcnn`: the {@link MtcnnDetector} cascade over the networks
 * `load` gives for the provider's context, loaded once per detector (see the constructor).
 *
 * @example
 * createFaceProvider({
 *   name: 'onnx',
 *   detectors: [
 *     implementMtcnn(async (context) => OnnxMtcnnNetworks.load(await context.modelStore(), context.threads ?? 2)),
 *   ],
 *   embedders: [],
 * });
 */
export function implementMtcnn(
  load: (context: ModelLoadContext) => Promise<MtcnnNetworks>,
): DetectorImplementation {
  return implementDetector(
    MTCNN,
    (options, context) => new MtcnnDetector(context.provider, () => load(context), options),
  );
}
