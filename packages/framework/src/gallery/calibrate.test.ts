import { describe, expect, it } from 'vitest';
import { InvalidInputError, InvalidOptionsError } from '../errors.js';
import { at, cosineDistance, embedderInfo } from './__fixtures__/synthetic.js';
import {
  calibrateThreshold,
  calibrateThresholdLeaveOneOut,
  equalErrorRate,
  formatCalibration,
  MAX_IMPOSTOR_PAIRS,
  operatingPointAtFar,
  rocCurve,
} from './calibrate.js';
import { FileGallery } from './gallery.js';

/** Distances computed from float32 vectors: compare with hand values to 6 decimals. */
const close = (v: number) => expect.closeTo(v, 6);
const sorted = (values: Iterable<number>) => [...values].sort((a, b) => a - b);
/** The cosine distance midway between two angles' (a threshold in the gap between two measured distances). */
const mid = (a: number, b: number) => (cosineDistance(a) + cosineDistance(b)) / 2;

describe('rocCurve', () => {
  // Genuine 0.2 0.4 0.6 0.8; impostor 0.5 0.7 0.9 1.1 1.3. Candidates: 0 and every distance.
  const roc = rocCurve([0.8, 0.2, 0.6, 0.4], [1.3, 0.5, 0.9, 0.7, 1.1]);

  it('gives FAR and TAR at every candidate threshold, counting distance ≤ threshold as accepted', async () => {
    expect(Array.from(roc.thresholds)).toEqual([0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.3]);
    expect(Array.from(roc.far)).toEqual([0, 0, 0, 0.2, 0.2, 0.4, 0.4, 0.6, 0.8, 1]);
    expect(Array.from(roc.tar)).toEqual([0, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1, 1, 1]);
    expect(roc.genuinePairs).toBe(4);
    expect(roc.impostorPairs).toBe(5);
  });

  it('picks the highest TAR whose FAR is at most the target, the threshold midway to the next distance', async () => {
    // FAR ≤ 10% up to 0.4 (next distance 0.5), ≤ 20% up to 0.6 (next 0.7), ≤ 50% up to 0.8 (next 0.9).
    expect(operatingPointAtFar(roc, 0.1)).toEqual({ threshold: close(0.45), far: 0, tar: 0.5, frr: 0.5 });
    expect(operatingPointAtFar(roc, 0.2)).toEqual({ threshold: close(0.65), far: 0.2, tar: 0.75, frr: 0.25 });
    expect(operatingPointAtFar(roc, 0.5)).toEqual({ threshold: close(0.85), far: 0.4, tar: 1, frr: 0 });
    expect(operatingPointAtFar(roc, 1)).toMatchObject({ threshold: 1.3, far: 1 });
  });

  it('finds the equal error rate where |FAR − FRR| is smallest', async () => {
    // |FAR − FRR| over the candidates: 1, .75, .5, .3, .05, .15, .4, .6, .8, 1 → 0.6 (FAR .2, FRR .25).
    expect(equalErrorRate(roc)).toEqual({ threshold: 0.6, far: 0.2, tar: 0.75, frr: 0.25, rate: 0.225 });
  });

  it('merges tied distances into one candidate', async () => {
    const tied = rocCurve([0.5, 0.5, 1], [0.5, 2]);
    expect(Array.from(tied.thresholds)).toEqual([0, 0.5, 1, 2]);
    expect(Array.from(tied.far)).toEqual([0, 0.5, 0.5, 1]);
    expect(Array.from(tied.tar)).toEqual([0, 2 / 3, 1, 1]);
    // Below the tie nothing is accepted: FAR 0 is reached only below 0.5 (midway from 0: 0.25).
    expect(operatingPointAtFar(tied, 0.1)).toEqual({ threshold: 0.25, far: 0, tar: 0, frr: 1 });
  });

  it('has no answer when impostors sit at distance 0, and refuses empty inputs or NaN', async () => {
    expect(operatingPointAtFar(rocCurve([0.1], [0, 1]), 0.1)).toBeUndefined();
    expect(() => rocCurve([], [1])).toThrow(InvalidInputError);
    expect(() => rocCurve([1], [])).toThrow(/at least one genuine and one impostor pair/);
    expect(() => rocCurve([Number.NaN], [1])).toThrow(/NaN/);
  });
});

describe('calibrateThreshold', () => {
  // A at 0°, B at 90°, C at 180° (2-d). With cosine distance every pair is 1 − cos(angle between them).
  const gallery = FileGallery.create({
    embedder: embedderInfo(2),
    metric: 'cosine',
    identities: [
      { name: 'A', examples: [{ source: 'a', embedding: at(0) }] },
      { name: 'B', examples: [{ source: 'b', embedding: at(90) }] },
      { name: 'C', examples: [{ source: 'c', embedding: at(180) }] },
    ],
  });
  // Genuine (5): A@10 → 10°, A@20 → 20°, B@100 → 10°, B@120 → 30°, A@65 → 65°.
  // Impostor (13): A@10 → B 80°, C 170°; A@20 → B 70°, C 160°; B@100 → A 100°, C 80°; B@120 → A 120°, C 60°;
  //   X@50 (not enrolled) → A 50°, B 40°, C 130°; A@65 → B 25°, C 115°.
  // Sorted impostor angles: 25 40 50 60 70 80 80 100 115 120 130 160 170.
  const probes = [
    { identity: 'A', embedding: at(10) },
    { identity: 'A', embedding: at(20) },
    { identity: 'B', embedding: at(100) },
    { identity: 'B', embedding: at(120) },
    { identity: 'X', embedding: at(50) },
    { identity: 'A', embedding: at(65) },
  ];
  const now = new Date('2025-06-01T12:00:00Z');

  it('splits genuine and impostor distances', async () => {
    const result = calibrateThreshold(gallery, probes, { now });
    expect(sorted(result.genuine)).toEqual([10, 10, 20, 30, 65].map(cosineDistance).map(close));
    expect(sorted(result.impostor)).toEqual(
      [25, 40, 50, 60, 70, 80, 80, 100, 115, 120, 130, 160, 170].map(cosineDistance).map(close),
    );
  });

  it('FAR 1%: below every impostor (25°), the largest genuine distance left is 20°: TAR 3/5, midway to 25°', async () => {
    const result = calibrateThreshold(gallery, probes, { targetFar: 0.01, now });
    expect(result.point).toEqual({ threshold: close(mid(20, 25)), far: 0, tar: 0.6, frr: close(0.4) });
    expect(result.gallery.threshold).toBeCloseTo(mid(20, 25), 6);
    expect(result.gallery.calibration).toEqual(result.calibration);
    expect(gallery.threshold).toBe(0); // the input gallery is unchanged
    expect(result.calibration).toMatchObject({
      method: 'probes',
      targetFar: 0.01,
      achievedFar: 0,
      achievedFrr: close(0.4),
      genuinePairs: 5,
      impostorPairs: 13,
      calibratedAt: '2025-06-01T12:00:00.000Z',
    });
    // 13 impostor pairs cannot resolve FAR 1% (needs 100) nor fill a FRR estimate; two probes are rejected.
    expect(result.warnings).toHaveLength(3);
    expect(result.warnings[0]).toMatch(/only 13 impostor pairs/);
  });

  it('lists the false rejects, farthest first, and says which probe is nearer to another identity within the threshold', () => {
    // FAR 1% (threshold between 20° and 25°): A@65 and B@120 are rejected; A@65's nearest other, B at 25°, is
    // beyond the threshold, so not a likely mislabel yet.
    const strict = calibrateThreshold(gallery, probes, { targetFar: 0.01, now });
    expect(strict.rejected).toEqual([
      {
        identity: 'A',
        distance: close(cosineDistance(65)),
        nearest: { identity: 'B', distance: close(cosineDistance(25)) },
        likelyMislabelled: false,
      },
      {
        identity: 'B',
        distance: close(cosineDistance(30)),
        nearest: { identity: 'C', distance: close(cosineDistance(60)) },
        likelyMislabelled: false,
      },
    ]);
    // 1 − cos 65° = 0.577382, 1 − cos 30° = 0.133975 (to 4 decimals, trailing zeros dropped: 0.134).
    expect(strict.warnings[2]).toBe(
      '2 probes are farther from their own identity than the threshold (false rejects): ' +
        'a probe of A (0.5774 from A), a probe of B (0.134 from B)',
    );
    // FAR 10% (threshold between 30° and 40°) accepts A@65 as B (25°), and still rejects it as A: labelled wrong?
    const loose = calibrateThreshold(
      gallery,
      probes.map((p, i) => (i === 5 ? { ...p, source: 'A/65.jpg' } : p)),
      { targetFar: 0.1, now },
    );
    expect(loose.rejected).toEqual([
      expect.objectContaining({ source: 'A/65.jpg', likelyMislabelled: true }),
    ]);
    expect(loose.warnings.at(-1)).toBe(
      '1 probe is farther from its own identity than the threshold (false rejects): ' +
        'A/65.jpg (0.5774 from A; nearer to B, 0.0937: labelled with the wrong name?). A probe labelled with ' +
        'the wrong name also counts as an accepted impostor and pulls the threshold down: fix or remove it and ' +
        'calibrate again',
    );
    // Nothing rejected: no such warning.
    const accepting = calibrateThreshold(gallery, probes, { targetFar: 0.5, now });
    expect(accepting.rejected).toEqual([]);
    expect(accepting.warnings.some((w) => w.includes('false rejects'))).toBe(false);
  });

  it('FAR 10% admits one impostor (25°) and reaches the genuine 30°: TAR 4/5; FAR 20% reaches 40°', async () => {
    expect(calibrateThreshold(gallery, probes, { targetFar: 0.1, now }).point).toEqual({
      threshold: close(mid(30, 40)),
      far: 1 / 13,
      tar: 0.8,
      frr: close(0.2),
    });
    expect(calibrateThreshold(gallery, probes, { targetFar: 0.2, now }).point).toEqual({
      threshold: close(mid(40, 50)),
      far: 2 / 13,
      tar: 0.8,
      frr: close(0.2),
    });
  });

  it('reports the key points and the equal error rate', async () => {
    const { calibration } = calibrateThreshold(gallery, probes, { now });
    expect(calibration.keyPoints).toEqual([
      { targetFar: 0.001, threshold: close(mid(20, 25)), far: 0, tar: 0.6, resolved: false },
      { targetFar: 0.01, threshold: close(mid(20, 25)), far: 0, tar: 0.6, resolved: false },
      { targetFar: 0.05, threshold: close(mid(20, 25)), far: 0, tar: 0.6, resolved: false },
      { targetFar: 0.1, threshold: close(mid(30, 40)), far: 1 / 13, tar: 0.8, resolved: true },
    ]);
    // |FAR − FRR| is smallest at 50° (FAR 3/13, FRR 1/5): EER = (3/13 + 1/5) / 2.
    expect(calibration.equalErrorRate).toEqual({
      threshold: close(cosineDistance(50)),
      rate: close((3 / 13 + 0.2) / 2),
    });
  });

  it('the stored threshold accepts exactly the calibrated share of probes', async () => {
    const { gallery: calibrated } = calibrateThreshold(gallery, probes, { targetFar: 0.1, now });
    // At 1 − cos 30°: A@10, A@20, B@100, B@120 are recognised; A@65 is 25° from B: a false accept of B.
    expect((await calibrated.match(probes.map((p) => p.embedding))).map((m) => m.identity)).toEqual([
      'A',
      'A',
      'B',
      'B',
      'unknown',
      'B',
    ]);
  });

  it('records the embedder precision when told it, through the gallery file; older files have none', () => {
    const int8 = calibrateThreshold(gallery, probes, { now, precision: 'int8' });
    expect(int8.calibration.precision).toBe('int8');
    const reloaded = FileGallery.parse(int8.gallery.toText());
    expect(reloaded.calibration).toEqual(int8.calibration);
    // Not told: not recorded, and the file has no such key (as a gallery calibrated before it was recorded).
    const unsaid = calibrateThreshold(gallery, probes, { now });
    expect('precision' in unsaid.calibration).toBe(false);
    expect(unsaid.gallery.toText()).not.toContain('precision');
    expect(FileGallery.parse(unsaid.gallery.toText()).calibration?.precision).toBeUndefined();
    expect(() => calibrateThreshold(gallery, probes, { precision: 'fp16' as never })).toThrow(/precision/);
    expect(() =>
      FileGallery.parse(int8.gallery.toText().replace('"precision": "int8"', '"precision": "bf16"')),
    ).toThrow(/precision/);
  });

  it('works the same on Euclidean distance (a monotone function of the angle)', async () => {
    const euclidean = FileGallery.create({
      embedder: embedderInfo(2),
      metric: 'euclidean',
      identities: (await gallery.identities()).map((name) => ({ name, examples: gallery.examples(name) })),
    });
    const result = calibrateThreshold(euclidean, probes, { targetFar: 0.01, now });
    // |u − v| = 2 sin(θ/2): midway between the chords of 20° and 25°.
    const chord = (degrees: number) => 2 * Math.sin((degrees * Math.PI) / 360);
    expect(result.point.threshold).toBeCloseTo((chord(20) + chord(25)) / 2, 6);
  });

  it('refuses calibration data without genuine or impostor pairs, and bad options', async () => {
    expect(() => calibrateThreshold(gallery, [{ identity: 'X', embedding: at(5) }])).toThrow(
      /need at least one genuine and one impostor pair, got 0 genuine and 3 impostor/,
    );
    const single = FileGallery.create({
      embedder: embedderInfo(2),
      identities: [{ name: 'A', examples: [{ source: 'a', embedding: at(0) }] }],
    });
    expect(() => calibrateThreshold(single, [{ identity: 'A', embedding: at(5) }])).toThrow(/0 impostor/);
    expect(() => calibrateThreshold(gallery, probes, { targetFar: 0 })).toThrow(InvalidOptionsError);
    expect(() => calibrateThreshold(gallery, probes, { targetFar: 1.5 })).toThrow(
      /calibrateThreshold: targetFar/,
    );
    expect(() => calibrateThreshold(gallery, probes, { target: 0.1 } as never)).toThrow(/Unrecognized key/);
    expect(() => calibrateThreshold(gallery, [{ identity: 'A', embedding: new Float32Array(3) }])).toThrow(
      InvalidInputError,
    );
  });

  it('formats a report', async () => {
    const report = formatCalibration(calibrateThreshold(gallery, probes, { now }));
    expect(report).toContain('calibration (probes): 5 genuine pairs, 13 impostor pairs');
    expect(report).toContain('threshold at target FAR 1.00%: FAR 0.00%, FRR 40.00%');
    // (1 − cos 30° + 1 − cos 40°) / 2 = 0.18397.
    expect(report).toContain('  10.00%       0.1840      7.69%      80.00%');
    expect(report).toContain('EER 21.54% at threshold 0.3572');
    expect(report).toMatch(/warning: only 13 impostor pairs/);
  });
});

describe('calibrateThresholdLeaveOneOut', () => {
  it('rests on a uniform, repeatable sample of the impostor pairs beyond MAX_IMPOSTOR_PAIRS', async () => {
    // 1,600 identities of two examples 0.2° apart, spread around the circle: 3,200 × 1,599 impostor pairs
    // (5.1 million). Keeping every one as a JavaScript number ended a 3,000-identity run at V8's heap limit.
    const n = 1600;
    const angle = (k: number) => (k * 360) / n;
    const identities = Array.from({ length: n }, (_, k) => ({
      name: `p${k}`,
      examples: [0, 1].map((d) => ({ source: `p${k}-${d}`, embedding: at(angle(k) + d * 0.2) })),
    }));
    const gallery = FileGallery.create({ embedder: embedderInfo(2), metric: 'cosine', identities });
    const result = calibrateThresholdLeaveOneOut(gallery, { now: new Date(0) });
    expect(result.impostor.length).toBe(MAX_IMPOSTOR_PAIRS);
    expect(result.warnings[0]).toMatch(
      /^5116800 impostor pairs: the curve rests on a uniform sample of 5000000/,
    );
    // Repeatable: the same gallery, the same sample and threshold.
    const again = calibrateThresholdLeaveOneOut(gallery, { now: new Date(0) });
    expect(again.calibration).toEqual(result.calibration);
    // Uniform: the sample's mean distance is the mean over every pair (computed here directly), within 0.5 %.
    let sum = 0;
    let pairs = 0;
    for (let i = 0; i < n; i++) {
      for (const d of [0, 0.2]) {
        for (let j = 0; j < n; j++) {
          if (j === i) continue;
          // The nearest of identity j's two examples.
          const gap = (a: number) => Math.min(Math.abs(a) % 360, 360 - (Math.abs(a) % 360));
          const a = angle(i) + d - angle(j);
          sum += cosineDistance(Math.min(gap(a), gap(a - 0.2)));
          pairs++;
        }
      }
    }
    const sampleMean = result.impostor.reduce((t, v) => t + v, 0) / result.impostor.length;
    expect(pairs).toBe(5_116_800);
    expect(Math.abs(sampleMean / (sum / pairs) - 1)).toBeLessThan(0.005);
  });

  // A: 0°, 10°, 30°; B: 90°, 100°; C: 200° (one example).
  const identities = [
    { name: 'A', examples: [0, 10, 30].map((d) => ({ source: `a${d}`, embedding: at(d) })) },
    { name: 'B', examples: [90, 100].map((d) => ({ source: `b${d}`, embedding: at(d) })) },
    { name: 'C', examples: [{ source: 'c200', embedding: at(200) }] },
  ];
  // Impostors, each example against the other identities (nearest example):
  //   A0 → B 90°, C 160°; A10 → B 80°, C 170°; A30 → B 60°, C 170°; B90 → A 60°, C 110°;
  //   B100 → A 70°, C 100°; C200 → A 160°, B 100°.
  const impostorAngles = [60, 60, 70, 80, 90, 100, 100, 110, 160, 160, 170, 170];

  it('nearest: each example against the nearest other example of its identity', async () => {
    const gallery = FileGallery.create({ embedder: embedderInfo(2), metric: 'cosine', identities });
    const result = calibrateThresholdLeaveOneOut(gallery, { now: new Date(0) });
    // A0 ↔ A10 10° (each other's nearest: one pair, whichever is held out), A30 → A10 20°, B90 ↔ B100 10°
    // (one pair); C has no other example.
    expect(sorted(result.genuine)).toEqual([10, 10, 20].map(cosineDistance).map(close));
    expect(result.calibration.genuinePairs).toBe(3);
    expect(sorted(result.impostor)).toEqual(impostorAngles.map(cosineDistance).map(close));
    expect(result.calibration.method).toBe('leave-one-out');
    expect(calibrateThresholdLeaveOneOut(gallery, { precision: 'fp32' }).calibration.precision).toBe('fp32');
    // Progress after each identity, in examples, up to the gallery's count; the result is the same with it.
    const told: [number, number][] = [];
    const withProgress = calibrateThresholdLeaveOneOut(gallery, {
      now: new Date(0),
      onProgress: (done, total) => told.push([done, total]),
    });
    expect(told).toEqual([
      [3, 6],
      [5, 6],
      [6, 6],
    ]);
    expect(withProgress.calibration).toEqual(result.calibration);
    expect(() => calibrateThresholdLeaveOneOut(gallery, { onProgress: 'yes' as never })).toThrow(
      /calibrateThresholdLeaveOneOut: .*onProgress/,
    );
    // Everything genuine (≤ 20°) is below every impostor (≥ 60°): the threshold is midway.
    expect(result.point).toEqual({ threshold: close(mid(20, 60)), far: 0, tar: 1, frr: close(0) });
    expect(result.rejected).toEqual([]);
    // An example of B enrolled as A (at 85°, 5° from B's 90°): genuine pairs 10° (six) and 65° (a85 to a20);
    // impostors 5° (a85–B, b90–A), 15°, 25°, 70°, 80°, 90°. FAR 30 % accepts the two at 5°: threshold between
    // 10° and 15°, which rejects a85, within it of B.
    const stray = FileGallery.create({
      embedder: embedderInfo(2),
      metric: 'cosine',
      identities: [
        { name: 'A', examples: [0, 10, 20, 85].map((d) => ({ source: `a${d}`, embedding: at(d) })) },
        { name: 'B', examples: [90, 100, 110].map((d) => ({ source: `b${d}`, embedding: at(d) })) },
      ],
    });
    const strayResult = calibrateThresholdLeaveOneOut(stray, { targetFar: 0.3 });
    expect(strayResult.point.threshold).toBeCloseTo(mid(10, 15), 6);
    expect(strayResult.rejected).toEqual([
      {
        identity: 'A',
        source: 'a85',
        distance: close(cosineDistance(65)),
        nearest: { identity: 'B', distance: close(cosineDistance(5)) },
        likelyMislabelled: true,
      },
    ]);
    expect(strayResult.warnings.at(-1)).toMatch(
      /^1 enrolled example is farther from its own identity than the threshold \(false rejects\): a85 \(/,
    );
  });

  it('centroid: each example against the re-normalised centroid of the others', async () => {
    const gallery = FileGallery.create({
      embedder: embedderInfo(2),
      metric: 'cosine',
      aggregation: 'centroid',
      identities,
    });
    const result = calibrateThresholdLeaveOneOut(gallery);
    // A0 → centroid(10°, 30°) = 20°; A10 → centroid(0°, 30°) = 15°, 5° away; A30 → centroid(0°, 10°) = 5°, 25°
    // away; B90 ↔ B100, 10° (the centroid of one other example is that example: one pair, counted once).
    expect(sorted(result.genuine)).toEqual([5, 10, 20, 25].map(cosineDistance).map(close));
    // Impostors against full centroids: B's is at 95°, C's at 200°, A's at the direction of the summed vectors.
    const rad = (d: number) => (d * Math.PI) / 180;
    const a =
      (Math.atan2(Math.sin(rad(10)) + Math.sin(rad(30)), 1 + Math.cos(rad(10)) + Math.cos(rad(30))) * 180) /
      Math.PI;
    const expected = [
      95, // A0 → B
      160, // A0 → C
      85, // A10 → B
      170, // A10 → C
      65, // A30 → B
      170, // A30 → C
      90 - a, // B90 → A
      110, // B90 → C
      100 - a, // B100 → A
      100, // B100 → C
      360 - 200 + a, // C200 → A
      105, // C200 → B
    ];
    expect(sorted(result.impostor)).toEqual(sorted(expected.map(cosineDistance)).map(close));
  });

  it('counts each distinct comparison once: a two-example pair, and two single examples against each other', async () => {
    // A: 0°, 20°; B: 30° (one example); C: 100° (one example). Held out either way, A's pair is one comparison
    // (20°), and B → C is C → B (70°). Before, each was counted twice, and 12 two-photo people passed for the
    // 24 genuine pairs that silence the small-sample warning.
    const gallery = FileGallery.create({
      embedder: embedderInfo(2),
      metric: 'cosine',
      identities: [
        { name: 'A', examples: [0, 20].map((d) => ({ source: `a${d}`, embedding: at(d) })) },
        { name: 'B', examples: [{ source: 'b30', embedding: at(30) }] },
        { name: 'C', examples: [{ source: 'c100', embedding: at(100) }] },
      ],
    });
    const result = calibrateThresholdLeaveOneOut(gallery, { targetFar: 0.01 });
    expect(sorted(result.genuine)).toEqual([close(cosineDistance(20))]);
    // A0 → B 30°, C 100°; A20 → B 10°, C 80°; B → A 10°, C 70°; C → A 80° (C → B is B → C).
    expect(sorted(result.impostor)).toEqual([10, 10, 30, 70, 80, 80, 100].map(cosineDistance).map(close));
    expect([result.calibration.genuinePairs, result.calibration.impostorPairs]).toEqual([1, 7]);
    expect(result.warnings).toContainEqual(expect.stringMatching(/^only 1 genuine pair backs the threshold/));
    // The pair rejected (20° is beyond the impostors at 10°, which FAR 0 keeps out) is named by the example
    // nearer another identity: a20, 10° from B, where a0 is 30° from it.
    expect(result.rejected).toEqual([
      {
        identity: 'A',
        source: 'a20',
        distance: close(cosineDistance(20)),
        nearest: { identity: 'B', distance: close(cosineDistance(10)) },
        likelyMislabelled: false,
      },
    ]);
  });

  it('shows a false reject on its side of the threshold, with more decimals where 4 would put it within', async () => {
    // Euclidean distances between unit vectors: 2·sin(θ/2). A's pair at 0.374325 (accepted), B's at 0.374348
    // (rejected), C 0.374345 from A's second example (the nearest impostor): the threshold is midway between
    // 0.374325 and 0.374345, and B's 0.374348 read "0.3743" beside it.
    const angle = (d: number) => (2 * Math.asin(d / 2) * 180) / Math.PI;
    const a = angle(0.374325);
    const gallery = FileGallery.create({
      embedder: embedderInfo(2),
      identities: [
        { name: 'A', examples: [0, a].map((d) => ({ source: `a${d}`, embedding: at(d) })) },
        {
          name: 'B',
          examples: [180, 180 + angle(0.374348)].map((d) => ({ source: `b${d}`, embedding: at(d) })),
        },
        { name: 'C', examples: [{ source: 'c', embedding: at(a + angle(0.374345)) }] },
      ],
    });
    const result = calibrateThresholdLeaveOneOut(gallery);
    expect(result.point.threshold).toBeCloseTo(0.374335, 5);
    expect(result.warnings.at(-1)).toMatch(/\(false rejects\): b180 \(0\.37435 from B\)$/);
  });

  it('needs an identity with two examples and two identities', async () => {
    const singles = FileGallery.create({
      embedder: embedderInfo(2),
      identities: [identities[2]!, { name: 'D', examples: [{ source: 'd', embedding: at(45) }] }],
    });
    // C against D is D against C: one impostor pair.
    expect(() => calibrateThresholdLeaveOneOut(singles)).toThrow(/got 0 genuine and 1 impostor/);
  });
});

describe('calibrateThreshold: probes that are enrolled examples', () => {
  const gallery = FileGallery.create({
    embedder: embedderInfo(3),
    identities: [
      { name: 'a', examples: [{ source: 'a/1.jpg', embedding: [1, 0, 0] }] },
      { name: 'b', examples: [{ source: 'b/1.jpg', embedding: [0, 1, 0] }] },
    ],
  });
  const fresh = [
    { identity: 'a', source: 'a/2.jpg', embedding: Float32Array.of(0.9, 0.1, 0.1) },
    { identity: 'b', source: 'b/2.jpg', embedding: Float32Array.of(0.1, 0.9, 0.1) },
  ];

  it('refuses the same pixels (an identical embedding), under any identity, naming them', () => {
    // The same direction is the same embedding; the copy of b/1 is labelled a (an impostor pair at 0).
    const copies = [
      { identity: 'a', source: 'a/copy.jpg', embedding: Float32Array.of(2, 0, 0) },
      { identity: 'a', source: 'a/other.jpg', embedding: Float32Array.of(0, 3, 0) },
      ...fresh,
    ];
    expect(() => calibrateThreshold(gallery, copies)).toThrow(InvalidInputError);
    expect(() => calibrateThreshold(gallery, copies)).toThrow(
      'calibrateThreshold: 2 of 4 probes are enrolled examples: a/copy.jpg (same pixels as enrolled a/1.jpg), ' +
        'a/other.jpg (same pixels as enrolled b/1.jpg).',
    );
    expect(calibrateThreshold(gallery, fresh).roc.genuinePairs).toBe(2);
  });

  it('refuses the same file (source) of the same identity, and lists at most five', () => {
    const same = [{ identity: 'b', source: 'b/1.jpg', embedding: Float32Array.of(0.2, 0.9, 0.1) }, ...fresh];
    expect(() => calibrateThreshold(gallery, same)).toThrow(
      '1 of 3 probes are enrolled examples: b/1.jpg (same file as enrolled b/1.jpg)',
    );
    // The same name under another identity's folder is another file.
    const elsewhere = [
      { identity: 'a', source: 'b/1.jpg', embedding: Float32Array.of(0.8, 0.2, 0.1) },
      ...fresh,
    ];
    expect(calibrateThreshold(gallery, elsewhere).overlaps).toEqual([]);
    const many = Array.from({ length: 7 }, () => ({ identity: 'a', embedding: Float32Array.of(1, 0, 0) }));
    expect(() => calibrateThreshold(gallery, [...many, ...fresh])).toThrow(
      /7 of 9 probes are enrolled examples: probe 0 \(same pixels as enrolled a\/1\.jpg\), .*probe 4 .*, and 2 more\./,
    );
  });

  it('calibrates anyway with allowOverlap, listing the overlaps and warning', () => {
    const copy = { identity: 'a', source: 'a/copy.jpg', embedding: Float32Array.of(1, 0, 0) };
    const result = calibrateThreshold(gallery, [copy, ...fresh], { allowOverlap: true });
    expect(result.overlaps).toEqual([
      { probe: 0, kind: 'same pixels', identity: 'a', enrolled: { identity: 'a', source: 'a/1.jpg' } },
    ]);
    expect(result.roc.genuinePairs).toBe(3);
    expect(result.warnings[0]).toBe(
      '1 of 3 probes are enrolled examples (allowed): their pairs make the threshold look better than it is',
    );
    expect(() => calibrateThreshold(gallery, fresh, { allowOverlap: 'yes' } as never)).toThrow(
      InvalidOptionsError,
    );
  });

  it('warns when fewer than 20 genuine pairs back the threshold', () => {
    expect(calibrateThreshold(gallery, fresh).warnings).toContain(
      'only 2 genuine pairs back the threshold (fewer than 20): the false-reject rate is a rough estimate; add ' +
        'labelled photos of enrolled people',
    );
    const probes = Array.from({ length: 20 }, (_, i) => ({
      identity: i % 2 ? 'a' : 'b',
      embedding: i % 2 ? Float32Array.of(0.9, 0.1, 0.01 * i) : Float32Array.of(0.1, 0.9, 0.01 * i),
    }));
    expect(calibrateThreshold(gallery, probes).warnings.filter((w) => w.includes('genuine pairs'))).toEqual(
      [],
    );
  });

  it('warns when no genuine pair is accepted (a mislabelled probe), and counts one pair in the singular', () => {
    // a's photo labelled b: its own identity is nearer than "its" one, so every genuine pair is an impostor's.
    const mislabelled = [{ identity: 'b', source: 'b/2.jpg', embedding: Float32Array.of(0.9, 0.1, 0.1) }];
    const { warnings, point } = calibrateThreshold(gallery, mislabelled);
    expect(point.tar).toBe(0);
    expect(warnings).toContain(
      'no genuine pair is accepted at this threshold (FRR 100 %): every enrolled person would be unknown. Is a ' +
        'probe labelled with the wrong name, or are the probes of other people than their folders say?',
    );
    expect(warnings.some((w) => w.startsWith('only 1 genuine pair backs the threshold'))).toBe(true);
    expect(calibrateThreshold(gallery, fresh).warnings.some((w) => w.startsWith('no genuine pair'))).toBe(
      false,
    );
  });
});
