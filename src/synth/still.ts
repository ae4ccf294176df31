import path from 'node:path';
import { intensityRange, type Condition } from './conditions.js';
import { generateLayout } from './layout.js';
import { writeMaskPng, writeRgbPng } from './png-io.js';
import { renderFrame, type RenderedFrame } from './render.js';
import { mixSeed, Rng } from './rng.js';

/** One line of `meta.jsonl`. `seed` plus condition and intensity re-render the still exactly. */
export interface StillMeta {
  id: string;
  condition: string;
  components: string[];
  intensity: number;
  seed: number;
}

export interface StillSpec {
  index: number;
  /** Run seed; the still's own seed is derived from it and the index. */
  runSeed: number;
  condition: Condition;
  /** Overrides the condition's default intensity range. */
  intensity?: readonly [number, number];
  width: number;
  height: number;
  supersample?: number;
}

export function stillId(index: number): string {
  return String(index).padStart(6, '0');
}

/** Decides a still's seed and intensity (no rendering). */
export function planStill(spec: StillSpec): StillMeta {
  const seed = mixSeed(spec.runSeed, spec.index, 0x5711);
  const [lo, hi] = spec.intensity && !spec.condition.components.includes('clear') ? spec.intensity : intensityRange(spec.condition);
  const intensity = Math.round(new Rng(seed ^ 0x1a7e).range(lo, hi) * 1000) / 1000;
  return { id: stillId(spec.index), condition: spec.condition.name, components: [...spec.condition.components], intensity, seed };
}

/**
 * Renders an independent random scene for one still. A random frame offset in the
 * scene's motion varies object placement further at no cost.
 */
export function renderStill(spec: StillSpec): { meta: StillMeta; frame: RenderedFrame } {
  const meta = planStill(spec);
  const layout = generateLayout(meta.seed);
  const t = new Rng(meta.seed ^ 0x7f).int(0, 40);
  const frame = renderFrame({
    layout,
    t,
    condition: spec.condition,
    intensity: meta.intensity,
    width: spec.width,
    height: spec.height,
    supersample: spec.supersample,
  });
  return { meta, frame };
}

/** Renders a still and writes `images/<id>.png` and `masks/<id>.png` under `dir`. */
export async function writeStill(dir: string, spec: StillSpec): Promise<StillMeta> {
  const { meta, frame } = renderStill(spec);
  await Promise.all([
    writeRgbPng(path.join(dir, 'images', `${meta.id}.png`), frame.rgb, frame.width, frame.height),
    writeMaskPng(path.join(dir, 'masks', `${meta.id}.png`), frame.mask, frame.width, frame.height),
  ]);
  return meta;
}
