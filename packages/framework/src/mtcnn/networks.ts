/**
 * The three MTCNN networks, as a provider runs them. The cascade prepares every input tensor (NCHW float32,
 * already standardised as `(x − 127.5) / 128`); a provider only executes the networks.
 */
export interface MtcnnNetworks {
  /**
   * P-Net on `count` images of `height`×`width`. Returns the regression map `reg` [count, 4, h, w] and the
   * face probability map `prob` [count, 2, h, w] (softmax over the two channels; channel 1 is "face").
   */
  pnet(
    input: Float32Array,
    count: number,
    height: number,
    width: number,
    options?: PNetRunOptions,
  ): Promise<PNetOutput>;
  /** R-Net on `count` 24×24 crops: `reg` [count, 4], `prob` [count, 2]. */
  rnet(input: Float32Array, count: number): Promise<RNetOutput>;
  /** O-Net on `count` 48×48 crops: `reg` [count, 4], `landmarks` [count, 10], `prob` [count, 2]. */
  onet(input: Float32Array, count: number): Promise<ONetOutput>;
  /**
   * Optional: called by `warmUp` with the largest P-Net input (pixels per call, all images together) of the
   * frames the caller expects. A provider may keep fast, retained memory for inputs up to that size and run
   * larger ones on memory it frees afterwards (at the latest in {@link MtcnnNetworks.afterPNet}), so that an
   * occasional huge frame does not leave the process larger for good.
   */
  reserve?(pnetPixels: number): void;
  /**
   * Optional: the largest P-Net input, in pixels per call (all images together), the provider runs well. The
   * cascade splits larger pyramid levels, per image and then into horizontal strips, with the same results
   * as one call; memory then stays bounded by this size whatever the frame. Default: no limit.
   */
  pnetPixelLimit?(): number;
  /**
   * Optional: called once the cascade has run every P-Net input of one call, also after a failure. A provider
   * that ran the strips of an unexpectedly large level on memory kept for that call only (see
   * {@link PNetRunOptions.transient}) frees it here.
   */
  afterPNet?(): Promise<void>;
  /** Release the networks. */
  dispose(): Promise<void>;
}

/** How the cascade runs one P-Net input. */
export interface PNetRunOptions {
  /**
   * A strip of a level larger than {@link MtcnnNetworks.pnetPixelLimit}. A provider that keeps memory sized for
   * the levels it expects can run the strips of a larger level (a rare huge frame) on memory it frees in
   * {@link MtcnnNetworks.afterPNet}, so that such a frame leaves nothing behind; it tells the two apart by
   * {@link PNetRunOptions.levelPixels} (the onnx provider does).
   */
  readonly transient?: boolean;
  /** With `transient`: the pixels of the whole level the strip belongs to (all images of the call together). */
  readonly levelPixels?: number;
}

/** P-Net output maps. */
export interface PNetOutput {
  readonly reg: Float32Array;
  readonly prob: Float32Array;
  readonly height: number;
  readonly width: number;
}

/** R-Net output. */
export interface RNetOutput {
  readonly reg: Float32Array;
  readonly prob: Float32Array;
}

/** O-Net output. `landmarks` holds the five x offsets, then the five y offsets, per crop. */
export interface ONetOutput {
  readonly reg: Float32Array;
  readonly landmarks: Float32Array;
  readonly prob: Float32Array;
}
