import { describe, expect, it } from 'vitest';
import { colorHistogram, histogramDistance, type RgbImage } from '../../src/producers/frame-histogram.js';
import { SceneCutDetector } from '../../src/producers/scene-cut-detector.js';

const W = 96;
const H = 64;

function image(pixel: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) data.set(pixel(x, y), (y * W + x) * 3);
  }
  return { data, width: W, height: H };
}

/** A textured scene (stripes and a gradient) panned by `shift` pixels. */
const texturedScene = (shift: number) =>
  image((x, y) => {
    const u = x + shift;
    return [(u * 5) % 256, (y * 4 + ((u >> 3) % 2) * 60) % 256, 128 + Math.round(100 * Math.sin(u / 7))];
  });
/** A different scene: dark blue-green checkerboard. */
const otherScene = (shift: number) => image((x, y) => ((((x + shift) >> 2) + (y >> 2)) % 2 ? [10, 40, 90] : [20, 120, 60]));
const uniform = (r: number, g: number, b: number) => image(() => [r, g, b]);

function cutsOf(frames: RgbImage[], options = { threshold: 0.3, minSceneFrames: 4 }): number[] {
  const detector = new SceneCutDetector(options);
  return frames.flatMap((frame, index) => (detector.next(frame) ? [index] : []));
}

describe('colorHistogram / histogramDistance', () => {
  it('is 0 for identical frames and near 1 for disjoint colours', () => {
    const a = colorHistogram(uniform(0, 0, 0), 8);
    const b = colorHistogram(uniform(255, 255, 255), 8);
    expect(histogramDistance(a, a)).toBe(0);
    expect(histogramDistance(a, b)).toBeCloseTo(1, 5);
  });

  it('looks only inside the region when given one: letterbox bars change nothing', () => {
    const content = texturedScene(3);
    const barred = new Uint8Array((W + 40) * (H + 20) * 3);
    for (let y = 0; y < H; y++) barred.set(content.data.subarray(y * W * 3, (y + 1) * W * 3), ((y + 10) * (W + 40) + 20) * 3);
    const region = { x: 20, y: 10, width: W, height: H };
    expect(colorHistogram({ data: barred, width: W + 40, height: H + 20, region }, 8)).toEqual(colorHistogram(content, 8));
    // without the region the black bars weigh in
    expect(histogramDistance(colorHistogram({ data: barred, width: W + 40, height: H + 20 }, 8), colorHistogram(content, 8))).toBeGreaterThan(0.2);
  });

  it('normalises each channel to 1 whatever the frame size', () => {
    const h = colorHistogram(texturedScene(0), 8);
    for (let ch = 0; ch < 3; ch++) expect(h.slice(ch * 8, ch * 8 + 8).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
  });
});

describe('SceneCutDetector', () => {
  it('starts scene 0 at frame 0', () => {
    expect(cutsOf([texturedScene(0)])).toEqual([0]);
  });

  it('finds a hard cut at the exact frame', () => {
    const frames = [...Array.from({ length: 12 }, (_, i) => texturedScene(i * 2)), ...Array.from({ length: 12 }, (_, i) => otherScene(i))];
    expect(cutsOf(frames)).toEqual([0, 12]);
  });

  it('finds every cut of several scenes', () => {
    const frames = [
      ...Array.from({ length: 6 }, (_, i) => texturedScene(i)),
      ...Array.from({ length: 6 }, () => uniform(230, 30, 30)),
      ...Array.from({ length: 6 }, (_, i) => otherScene(i)),
      ...Array.from({ length: 6 }, (_, i) => texturedScene(50 + i)),
    ];
    expect(cutsOf(frames)).toEqual([0, 6, 12, 18]);
  });

  it('does not fire on smooth motion (a pan over textured content)', () => {
    expect(cutsOf(Array.from({ length: 60 }, (_, i) => texturedScene(i * 3)))).toEqual([0]);
  });

  it('does not fire on a slow fade to black', () => {
    const frames = Array.from({ length: 40 }, (_, i) => {
      const base = texturedScene(0);
      const k = 1 - i / 40;
      return { ...base, data: base.data.map((v) => Math.round(v * k)) };
    });
    expect(cutsOf(frames)).toEqual([0]);
  });

  it('does not fire on a one-second dissolve between two flat colours', () => {
    // Flat frames move all their mass at once: the worst case for histogram distances.
    const frames = Array.from({ length: 30 }, (_, i) => {
      const t = i / 29;
      return uniform(Math.round(220 * (1 - t)), 40, Math.round(220 * t));
    });
    expect(cutsOf(frames)).toEqual([0]);
  });

  it('ignores a cut closer than minSceneFrames to the previous scene start', () => {
    // cuts at 5 and 7: the one at 7 comes 2 frames after 5
    const frames = [
      ...Array.from({ length: 5 }, (_, i) => texturedScene(i)),
      ...Array.from({ length: 2 }, () => uniform(230, 30, 30)),
      ...Array.from({ length: 8 }, (_, i) => otherScene(i)),
    ];
    expect(cutsOf(frames, { threshold: 0.3, minSceneFrames: 4 })).toEqual([0, 5]);
    expect(cutsOf(frames, { threshold: 0.3, minSceneFrames: 2 })).toEqual([0, 5, 7]);
    // A cut at frame 2 of the video is ignored too: scene 0 starts at frame 0.
    const early = [texturedScene(0), texturedScene(1), ...Array.from({ length: 6 }, (_, i) => otherScene(i))];
    expect(cutsOf(early, { threshold: 0.3, minSceneFrames: 4 })).toEqual([0]);
  });

  it('respects the threshold', () => {
    const frames = [...Array.from({ length: 6 }, (_, i) => texturedScene(i)), ...Array.from({ length: 6 }, (_, i) => otherScene(i))];
    expect(cutsOf(frames, { threshold: 1, minSceneFrames: 1 })).toEqual([0]);
    expect(cutsOf(frames, { threshold: 0.05, minSceneFrames: 1 })).toEqual([0, 6]);
  });

  it('rejects impossible settings', () => {
    expect(() => new SceneCutDetector({ threshold: 2, minSceneFrames: 4 })).toThrow(/threshold/);
    expect(() => new SceneCutDetector({ threshold: 0.3, minSceneFrames: 0 })).toThrow(/minSceneFrames/);
  });
});
