import { intensityRange, type Condition } from './conditions.js';
import { mixSeed, Rng } from './rng.js';

/** Every scene is at least this long, so cut detectors and per-scene adapters have room. */
export const MIN_SCENE_FRAMES = 8;

/** A scene as recorded in `FILE.scenes.json` (plus the seed of its layout). */
export interface PlannedScene {
  index: number;
  startFrame: number;
  /** Exclusive. */
  endFrame: number;
  condition: string;
  components: string[];
  intensity: number;
  layoutSeed: number;
}

export interface ScenePlanOptions {
  frames: number;
  scenes: number;
  seed: number;
  conditions: readonly Condition[];
  intensity?: readonly [number, number];
}

/**
 * Splits `frames` into `scenes` of varied lengths (each >= MIN_SCENE_FRAMES) and
 * gives each a fresh layout and a condition different from its predecessor's
 * (whenever the list offers more than one), so every boundary is a hard cut.
 */
export function planScenes(opts: ScenePlanOptions): PlannedScene[] {
  const rng = new Rng(mixSeed(opts.seed, 0x5ce9e));
  const lengths = sceneLengths(rng, opts.frames, opts.scenes);
  const plan: PlannedScene[] = [];
  let start = 0;
  let previous: Condition | null = null;
  for (let index = 0; index < lengths.length; index++) {
    const choices = opts.conditions.filter((c) => c.name !== previous?.name);
    const condition = rng.pick(choices.length > 0 ? choices : opts.conditions);
    const [lo, hi] = opts.intensity && !condition.components.includes('clear') ? opts.intensity : intensityRange(condition);
    const length = lengths[index]!;
    plan.push({
      index,
      startFrame: start,
      endFrame: start + length,
      condition: condition.name,
      components: [...condition.components],
      intensity: Math.round(rng.range(lo, hi) * 1000) / 1000,
      layoutSeed: mixSeed(opts.seed, index, 0x1a7),
    });
    previous = condition;
    start += length;
  }
  return plan;
}

function sceneLengths(rng: Rng, frames: number, scenes: number): number[] {
  const spare = frames - scenes * MIN_SCENE_FRAMES;
  const weights = Array.from({ length: scenes }, () => rng.range(0.35, 1.65));
  const total = weights.reduce((a, b) => a + b, 0);
  const lengths = weights.map((w) => MIN_SCENE_FRAMES + Math.floor((spare * w) / total));
  let left = frames - lengths.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0; i = (i + 1) % scenes, left--) lengths[i] = lengths[i]! + 1;
  return lengths;
}
