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
  /**
   * Measures how visible the cut from `before` into `after` is (0..1). When given,
   * each scene is redrawn (condition, intensity, layout) up to CUT_ATTEMPTS times
   * until its cut reaches `minCut`, keeping the strongest draw otherwise.
   */
  cutDistance?: (before: PlannedScene, after: PlannedScene) => number;
  /**
   * One condition per scene, in order (evaluation videos): overrides `scenes` and the random
   * choice from `conditions`; redraws for a visible cut then vary only layout and intensity.
   */
  sceneConditions?: readonly Condition[];
  /** @defaultValue 0.4 — a margin over the producer's default cut threshold of 0.3. */
  minCut?: number;
}

export const CUT_ATTEMPTS = 12;

/**
 * Splits `frames` into `scenes` of varied lengths (each >= MIN_SCENE_FRAMES) and
 * gives each a fresh layout and a condition different from its predecessor's
 * (whenever the list offers more than one), so every boundary is a hard cut.
 */
export function planScenes(opts: ScenePlanOptions): PlannedScene[] {
  const rng = new Rng(mixSeed(opts.seed, 0x5ce9e));
  const fixed = opts.sceneConditions && opts.sceneConditions.length > 0 ? opts.sceneConditions : undefined;
  const lengths = sceneLengths(rng, opts.frames, fixed ? fixed.length : opts.scenes);
  const plan: PlannedScene[] = [];
  const minCut = opts.minCut ?? 0.4;
  let start = 0;
  for (let index = 0; index < lengths.length; index++) {
    const previous = plan[index - 1];
    const draw = (attempt: number): PlannedScene => {
      const condition = fixed ? fixed[index]! : nextCondition(rng, opts.conditions, previous);
      const [lo, hi] = opts.intensity && !condition.components.includes('clear') ? opts.intensity : intensityRange(condition);
      return {
        index,
        startFrame: start,
        endFrame: start + lengths[index]!,
        condition: condition.name,
        components: [...condition.components],
        intensity: Math.round(rng.range(lo, hi) * 1000) / 1000,
        layoutSeed: mixSeed(opts.seed, index, attempt, 0x1a7),
      };
    };
    let chosen = draw(0);
    if (previous && opts.cutDistance) {
      let best = opts.cutDistance(previous, chosen);
      for (let attempt = 1; attempt < CUT_ATTEMPTS && best < minCut; attempt++) {
        const candidate = draw(attempt);
        const d = opts.cutDistance(previous, candidate);
        if (d > best) {
          best = d;
          chosen = candidate;
        }
      }
    }
    plan.push(chosen);
    start = chosen.endFrame;
  }
  return plan;
}

/**
 * A condition unlike the previous scene's: never the same one, and preferably sharing
 * no component (night → rain+night is a weak cut; night → snow is not).
 */
function nextCondition(rng: Rng, conditions: readonly Condition[], previous: PlannedScene | undefined): Condition {
  if (!previous) return rng.pick(conditions);
  const different = conditions.filter((c) => c.name !== previous.condition);
  const disjoint = different.filter((c) => !c.components.some((k) => previous.components.includes(k)));
  return rng.pick(disjoint.length > 0 ? disjoint : different.length > 0 ? different : conditions);
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
