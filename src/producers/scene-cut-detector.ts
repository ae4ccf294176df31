import { colorHistogram, histogramDistance, type RgbImage } from './frame-histogram.js';

export interface SceneCutOptions {
  /** Histogram distance (0..1) between consecutive frames at or above which a cut is considered. */
  threshold: number;
  /** A cut fewer than this many frames after the current scene's start is ignored. */
  minSceneFrames: number;
  /** Histogram bins per colour channel. @defaultValue 8 */
  bins?: number;
  /**
   * A cut must also be this many times the mean distance of the scene's recent frames, so
   * sustained change (fast motion, a long dissolve) does not fire on every frame. @defaultValue 2
   */
  spikeRatio?: number;
  /** Frames in that recent mean. @defaultValue 8 */
  window?: number;
}

/**
 * Decides, frame by frame, where scenes start (hard cuts). Pure and synchronous: feed it the
 * frames of one video in order. Compares colour histograms of consecutive frames, which barely
 * move under camera or object motion but jump at a cut.
 */
export class SceneCutDetector {
  private readonly threshold: number;
  private readonly minSceneFrames: number;
  private readonly bins: number;
  private readonly spikeRatio: number;
  private readonly recent: Float64Array;
  private previous: Float32Array;
  private current: Float32Array;
  private index = -1;
  private sceneStart = 0;
  private recentCount = 0;
  private recentNext = 0;
  /** Distance of the last frame to the one before it (0 for frame 0); for logs and tuning. */
  lastDistance = 0;

  constructor(options: SceneCutOptions) {
    if (!(options.threshold >= 0 && options.threshold <= 1)) throw new RangeError('threshold must be between 0 and 1');
    if (!(options.minSceneFrames >= 1)) throw new RangeError('minSceneFrames must be at least 1');
    this.threshold = options.threshold;
    this.minSceneFrames = options.minSceneFrames;
    this.bins = options.bins ?? 8;
    this.spikeRatio = options.spikeRatio ?? 2;
    this.recent = new Float64Array(Math.max(1, options.window ?? 8));
    this.previous = new Float32Array(3 * this.bins);
    this.current = new Float32Array(3 * this.bins);
  }

  /** Feeds the next frame; true when it starts a new scene. Frame 0 always starts scene 0. */
  next(image: RgbImage): boolean {
    this.index++;
    colorHistogram(image, this.bins, this.current);
    [this.previous, this.current] = [this.current, this.previous];
    if (this.index === 0) {
      this.lastDistance = 0;
      return true;
    }
    const distance = histogramDistance(this.previous, this.current);
    this.lastDistance = distance;
    const isCut = distance >= this.threshold && distance >= this.spikeRatio * this.recentMean() && this.index - this.sceneStart >= this.minSceneFrames;
    if (isCut) {
      this.sceneStart = this.index;
      // The new scene's motion level starts fresh; the old scene's says nothing about it.
      this.recentCount = 0;
      this.recentNext = 0;
    } else {
      this.recent[this.recentNext] = distance;
      this.recentNext = (this.recentNext + 1) % this.recent.length;
      this.recentCount = Math.min(this.recentCount + 1, this.recent.length);
    }
    return isCut;
  }

  private recentMean(): number {
    if (this.recentCount === 0) return 0;
    let sum = 0;
    for (let i = 0; i < this.recentCount; i++) sum += this.recent[i]!;
    return sum / this.recentCount;
  }
}
