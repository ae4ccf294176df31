import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLASS_NAMES } from './classes.js';
import type { Condition } from './conditions.js';
import { parseCondition } from './conditions.js';
import { RawVideoEncoder } from './ffmpeg-encoder.js';
import { generateLayout } from './layout.js';
import { writeMaskPng } from './png-io.js';
import { renderFrame } from './render.js';
import { colorHistogram, histogramDistance } from './cut-strength.js';
import { MIN_SCENE_FRAMES, planScenes, type PlannedScene } from './scene-plan.js';
import { SynthError } from './synth-error.js';
import { ErrorCode } from '../shared/errors/index.js';

/** Mask PNG writes in flight while the next frame renders. */
const MASK_WRITES_IN_FLIGHT = 8;

export interface VideoOptions {
  /** Output MP4; masks go to `<out without .mp4>.masks/`, scenes to `<…>.scenes.json`. */
  out: string;
  frames: number;
  scenes: number;
  width: number;
  height: number;
  fps: number;
  seed: number;
  conditions: readonly Condition[];
  intensity?: readonly [number, number];
  /** One condition per scene, in this order (overrides `scenes` and `conditions`' random choice). */
  sceneConditions?: readonly Condition[];
  supersample?: number;
  /** An ffmpeg filter over the encoded picture (not the masks): styles no training image has. */
  filter?: string;
  onProgress?: (done: number, total: number) => void;
}

/** The `FILE.scenes.json` document. */
export interface ScenesFile {
  seed: number;
  width: number;
  height: number;
  fps: number;
  frames: number;
  classes: string[];
  scenes: Omit<PlannedScene, 'layoutSeed'>[];
}

export interface VideoResult {
  scenes: PlannedScene[];
  /** Histogram distance at each cut (index i: cut into scene i+1), as a cut detector sees it. */
  cutDistances: number[];
  masksDir: string;
  scenesPath: string;
  seconds: number;
}

/** `clip.mp4` → `clip`, so outputs are `clip.masks/` and `clip.scenes.json`. */
export function outputStem(out: string): string {
  return out.replace(/\.mp4$/i, '');
}

/**
 * Renders a multi-scene video: frames stream into ffmpeg as they are rendered, each
 * frame's exact class mask is written as `FILE.masks/NNNNNN.png`, and the scene
 * list (ranges, conditions, intensities) as `FILE.scenes.json`.
 */
export async function renderVideo(opts: VideoOptions): Promise<VideoResult> {
  const started = performance.now();
  const stem = outputStem(opts.out);
  const masksDir = `${stem}.masks`;
  const scenesPath = `${stem}.scenes.json`;
  const scenes = opts.sceneConditions && opts.sceneConditions.length > 0 ? opts.sceneConditions.length : opts.scenes;
  if (opts.frames < scenes * MIN_SCENE_FRAMES) {
    throw new SynthError(ErrorCode.SYNTH_OPTION, `${opts.frames} frames are too few for ${scenes} scenes: each scene needs >= ${MIN_SCENE_FRAMES} frames`);
  }
  const plan = planScenes({ ...opts, scenes, cutDistance: cutMeter(opts) });
  await mkdir(path.dirname(opts.out), { recursive: true });
  // Masks from an earlier, longer render would otherwise outlive this one's frames.
  await rm(masksDir, { recursive: true, force: true });
  await mkdir(masksDir, { recursive: true });

  const encoder = new RawVideoEncoder({ out: opts.out, width: opts.width, height: opts.height, fps: opts.fps, filter: opts.filter });
  const writes = new Set<Promise<void>>();
  const cutDistances: number[] = [];
  let lastHistogram: Float32Array | null = null;
  let done = 0;
  try {
    for (const scene of plan) {
      const layout = generateLayout(scene.layoutSeed, scene.endFrame - scene.startFrame);
      const condition = parseCondition(scene.condition) as Condition;
      for (let frame = scene.startFrame; frame < scene.endFrame; frame++) {
        const rendered = renderFrame({
          layout,
          t: frame - scene.startFrame,
          condition,
          intensity: scene.intensity,
          width: opts.width,
          height: opts.height,
          supersample: opts.supersample,
        });
        while (writes.size >= MASK_WRITES_IN_FLIGHT) await Promise.race(writes);
        const name = path.join(masksDir, `${String(frame).padStart(6, '0')}.png`);
        const w: Promise<void> = writeMaskPng(name, rendered.mask, opts.width, opts.height).then(() => {
          writes.delete(w);
        });
        writes.add(w);
        if (frame === scene.startFrame || frame === scene.endFrame - 1) {
          const h = colorHistogram(rendered.rgb, opts.width, opts.height);
          if (frame === scene.startFrame && lastHistogram) cutDistances.push(histogramDistance(lastHistogram, h));
          lastHistogram = h;
        }
        await encoder.write(rendered.rgb);
        opts.onProgress?.(++done, opts.frames);
      }
    }
    await Promise.all(writes);
    await encoder.finish();
  } catch (error) {
    encoder.abort();
    await Promise.allSettled(writes);
    throw error;
  }

  const doc: ScenesFile = {
    seed: opts.seed,
    width: opts.width,
    height: opts.height,
    fps: opts.fps,
    frames: opts.frames,
    classes: [...CLASS_NAMES],
    scenes: plan.map(({ layoutSeed: _seed, ...scene }) => scene),
  };
  await writeFile(scenesPath, `${JSON.stringify(doc, null, 2)}\n`);
  return { scenes: plan, cutDistances, masksDir, scenesPath, seconds: (performance.now() - started) / 1000 };
}

/**
 * Renders the frames either side of a prospective cut (at the output size) and
 * measures their histogram distance. Histograms are cached, since the planner tries
 * several successors for the same predecessor.
 */
function cutMeter(opts: VideoOptions): (before: PlannedScene, after: PlannedScene) => number {
  const cache = new Map<string, Float32Array>();
  const histogram = (scene: PlannedScene, t: number): Float32Array => {
    const key = `${scene.layoutSeed}|${scene.condition}|${scene.intensity}|${t}`;
    let h = cache.get(key);
    if (!h) {
      const frame = renderFrame({
        layout: generateLayout(scene.layoutSeed, scene.endFrame - scene.startFrame),
        t,
        condition: parseCondition(scene.condition) as Condition,
        intensity: scene.intensity,
        width: opts.width,
        height: opts.height,
        supersample: opts.supersample,
      });
      h = colorHistogram(frame.rgb, opts.width, opts.height);
      cache.set(key, h);
    }
    return h;
  };
  return (before, after) => histogramDistance(histogram(before, before.endFrame - before.startFrame - 1), histogram(after, 0));
}
