import path from 'node:path';
import { LetterboxResizer } from '../producers/letterbox-resizer.js';
import { planModelInput, type ModelInputSpec } from '../shared/model-input-plan.js';
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
  /** Size the still was rendered at (what a user's video would be). */
  sourceWidth?: number;
  sourceHeight?: number;
  /** Size of the written PNGs: the model input with `modelInput`, else the render size. */
  width?: number;
  height?: number;
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
  /**
   * Train as you serve: the rendered still goes through `planModelInput` and the producer's
   * `LetterboxResizer`, and the PNGs are written at the model input size (mask by nearest
   * sampling, 255 in letterbox padding).
   */
  modelInput?: ModelInputSpec;
}

/** Value written into mask pixels that lie in letterbox padding (no class; ignore in the loss). */
export const MASK_PADDING = 255;

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

/**
 * The still as the model would receive it: RGB through exactly the producer's path
 * (`planModelInput` + `LetterboxResizer.resize`), the class mask sampled nearest at each
 * plan pixel's centre within the plan rect, `MASK_PADDING` outside it.
 */
export async function toModelInput(frame: RenderedFrame, spec: ModelInputSpec): Promise<RenderedFrame> {
  const plan = planModelInput(spec, frame.width, frame.height);
  const resizer = new LetterboxResizer(frame.width, frame.height, plan);
  const rgb = await resizer.resize(Buffer.from(frame.rgb.buffer, frame.rgb.byteOffset, frame.rgb.byteLength));
  const { rect } = plan;
  const mask = new Uint8Array(plan.width * plan.height).fill(MASK_PADDING);
  const cols = new Int32Array(rect.width);
  for (let x = 0; x < rect.width; x++) cols[x] = Math.min(frame.width - 1, Math.floor(((x + 0.5) * frame.width) / rect.width));
  for (let y = 0; y < rect.height; y++) {
    const sy = Math.min(frame.height - 1, Math.floor(((y + 0.5) * frame.height) / rect.height));
    const src = sy * frame.width;
    const dst = (rect.y + y) * plan.width + rect.x;
    for (let x = 0; x < rect.width; x++) mask[dst + x] = frame.mask[src + cols[x]!]!;
  }
  return { width: plan.width, height: plan.height, rgb: new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength), mask };
}

/** Renders a still and writes `images/<id>.png` and `masks/<id>.png` under `dir`. */
export async function writeStill(dir: string, spec: StillSpec): Promise<StillMeta> {
  const rendered = renderStill(spec);
  const frame = spec.modelInput ? await toModelInput(rendered.frame, spec.modelInput) : rendered.frame;
  const meta: StillMeta = { ...rendered.meta, sourceWidth: spec.width, sourceHeight: spec.height, width: frame.width, height: frame.height };
  await Promise.all([
    writeRgbPng(path.join(dir, 'images', `${meta.id}.png`), frame.rgb, frame.width, frame.height),
    writeMaskPng(path.join(dir, 'masks', `${meta.id}.png`), frame.mask, frame.width, frame.height),
  ]);
  return meta;
}
