import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { InputError } from '../shared/errors/index.js';
import { CLASS_NAMES } from '../synth/classes.js';
import { parseCondition, type Condition } from '../synth/conditions.js';
import { renderVideo } from '../synth/video.js';

/**
 * Seed base of evaluation videos. Training stills use seeds from 1 000 000 (+100 000 per
 * condition, +1 000 per source size); these lie in neither range.
 */
export const DEFAULT_EVAL_SEED = 7_300_001;

// prettier-ignore
export const DEFAULT_EVAL_CONDITIONS = [
  'clear', 'fog', 'night', 'rain', 'snow', 'dusk',
  'fog+night', 'rain+dusk', 'snow+night', 'fog+dusk', 'rain+night', 'snow+dusk',
] as const;

/** The sizes and aspect ratios users send: 16:9 from 180p to 720p, 4:3, portrait, square. */
export const DEFAULT_EVAL_SIZES = ['160x160', '320x180', '640x360', '1280x720', '768x576', '360x640'] as const;

/**
 * Styles no training image has, applied to rendered videos by ffmpeg filters while encoding
 * (sizes in the filters scale with the frame, like the renderer's effects).
 */
export const UNSEEN_STYLES: Readonly<Record<string, (width: number, height: number) => string>> = {
  sepia: () => 'colorchannelmixer=.393:.769:.189:0:.349:.686:.168:0:.272:.534:.131',
  noise: () => 'noise=alls=45:allf=t+u',
  blur: (w, h) => `gblur=sigma=${(1.2 * Math.sqrt((w * h) / (224 * 128))).toFixed(2)}`,
  palette: () => 'hue=h=120:s=1.3',
};

/** The ground truth of a frame's scene. */
export interface SceneTruth {
  condition: string;
  /** `condition`, or `condition/style` for an unseen style. */
  label: string;
  composition: boolean;
  components: string[];
  style?: string;
}

/** A rendered evaluation video with exact ground truth per frame. */
export interface EvalVideo {
  path: string;
  width: number;
  height: number;
  sceneOf(frame: number): SceneTruth;
  /** Ground-truth mask of `frame` at source size, in model class indices (255: not scored). */
  mask(frame: number, modelClass: (name: string) => number): Promise<Uint8Array>;
}

export interface RenderEvalVideosOptions {
  dir: string;
  sizes: readonly string[];
  conditions: readonly string[];
  /** Scenes (each its own street layout) per condition and size. */
  scenesPerCondition: number;
  /**
   * Scenes of `clear` per size, when more than `scenesPerCondition`: added after the cycle. Base
   * on clear is the reference the sizes are compared by, and with 2 layouts one size's figure
   * moved by up to 7 points with the layouts drawn. @defaultValue scenesPerCondition
   */
  clearScenes?: number;
  /**
   * Scenes of each composition per size, when more than `scenesPerCondition`: the extra ones go
   * into a second video per size (its own seed), so the first video, and every figure of the
   * single conditions, stays as it was. With 4 scenes, a composition whose adapters lose on a
   * third of its scenes (snow+night on validation videos: mean +5.7 points, 4 of 12 scenes below
   * the base) came out at or below the base in 15% of resampled 4-scene draws; with 12, in 3.5%.
   * @defaultValue scenesPerCondition
   */
  compositionScenes?: number;
  framesPerScene: number;
  seed: number;
  /** Unseen styles, each over `styleConditions`, rendered at `styleSizes`. */
  styles?: readonly string[];
  styleConditions?: readonly string[];
  styleSizes?: readonly string[];
  fps?: number;
  onVideo?: (done: number, total: number, name: string) => void;
}

function parseSizeText(text: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/.exec(text.trim());
  if (!m) throw new InputError('E_INPUT_DECODE', `size "${text}": expected WIDTHxHEIGHT, e.g. 640x360`);
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width % 2 !== 0 || height % 2 !== 0 || width < 32 || height < 32)
    throw new InputError('E_INPUT_DECODE', `size "${text}": even sides of at least 32 pixels (H.264)`);
  return { width, height };
}

function conditionOf(name: string): Condition {
  const condition = parseCondition(name);
  if (!condition) throw new InputError('E_INPUT_DECODE', `unknown condition "${name}" (e.g. clear, fog, night, fog+night)`);
  return condition;
}

/**
 * Renders held-out evaluation videos: per size, one H.264 video whose scenes cycle through
 * the conditions (each condition `scenesPerCondition` times, hard cuts between scenes), plus
 * one video per unseen style. Ground truth is the renderer's exact mask of every frame.
 */
export async function renderEvalVideos(options: RenderEvalVideosOptions): Promise<EvalVideo[]> {
  const jobs: { name: string; size: string; conditions: Condition[]; style?: string; seed: number }[] = [];
  const order = options.conditions.map(conditionOf);
  options.sizes.forEach((size) => {
    const conditions = Array.from({ length: options.scenesPerCondition }, () => order).flat();
    const clear = order.find((c) => c.name === 'clear');
    if (clear) for (let extra = options.scenesPerCondition; extra < (options.clearScenes ?? 0); extra++) conditions.push(clear);
    // One seed for every size: street layouts are drawn from the seed alone (generateLayout does
    // not see the frame size), so each size renders the same streets and the sizes are compared
    // on the same scenes. With a seed per size, base on clear moved by up to 5 points between
    // sizes with the layouts drawn, even at 8 layouts per size.
    jobs.push({ name: `eval-${size}`, size, conditions, seed: options.seed });
    const compositions = order.filter((c) => c.components.length > 1);
    const extra = (options.compositionScenes ?? 0) - options.scenesPerCondition;
    if (compositions.length > 0 && extra > 0) {
      const more = Array.from({ length: extra }, () => compositions).flat();
      jobs.push({ name: `eval-${size}-compositions`, size, conditions: more, seed: options.seed + 600_000 });
    }
  });
  for (const [sti, style] of (options.styles ?? []).entries()) {
    if (!UNSEEN_STYLES[style]) throw new InputError('E_INPUT_DECODE', `unknown style "${style}" (one of ${Object.keys(UNSEEN_STYLES).join(', ')})`);
    const styleConditions = (options.styleConditions ?? ['clear']).map(conditionOf);
    for (const [ssi, size] of (options.styleSizes ?? ['640x360']).entries()) {
      const conditions = Array.from({ length: options.scenesPerCondition }, () => styleConditions).flat();
      jobs.push({ name: `style-${style}-${size}`, size, conditions, style, seed: options.seed + 500_000 + 1_000 * sti + 100 * ssi });
    }
  }
  await mkdir(options.dir, { recursive: true });
  const videos: EvalVideo[] = [];
  for (const [ji, job] of jobs.entries()) {
    const { width, height } = parseSizeText(job.size);
    const out = path.join(options.dir, `${job.name}.mp4`);
    const result = await renderVideo({
      out,
      frames: job.conditions.length * options.framesPerScene,
      scenes: job.conditions.length,
      sceneConditions: job.conditions,
      conditions: job.conditions,
      width,
      height,
      fps: options.fps ?? 24,
      seed: job.seed,
      ...(job.style ? { filter: UNSEEN_STYLES[job.style]!(width, height) } : {}),
    });
    const starts = result.scenes.map((s) => s.startFrame);
    const truths: SceneTruth[] = result.scenes.map((s) => {
      const condition = conditionOf(s.condition);
      return {
        condition: condition.name,
        label: job.style ? `${condition.name}/${job.style}` : condition.name,
        composition: condition.components.length > 1,
        components: [...condition.components],
        ...(job.style ? { style: job.style } : {}),
      };
    });
    const masksDir = result.masksDir;
    videos.push({
      path: out,
      width,
      height,
      sceneOf(frame) {
        let i = starts.length - 1;
        while (i > 0 && starts[i]! > frame) i--;
        return truths[i]!;
      },
      async mask(frame, modelClass) {
        const file = path.join(masksDir, `${String(frame).padStart(6, '0')}.png`);
        const raw = await sharp(file).extractChannel(0).raw().toBuffer();
        const lut = new Uint8Array(256).fill(255);
        CLASS_NAMES.forEach((name, i) => (lut[i] = modelClass(name)));
        const out = new Uint8Array(raw.length);
        for (let i = 0; i < raw.length; i++) out[i] = lut[raw[i]!]!;
        return out;
      },
    });
    options.onVideo?.(ji + 1, jobs.length, job.name);
  }
  return videos;
}
