import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { InputError } from '../shared/errors/index.js';
import { intensityRange, parseCondition, type Condition } from '../synth/conditions.js';
import { CLASS_NAMES } from '../synth/classes.js';
import { generateLayout } from '../synth/layout.js';
import { renderFrame } from '../synth/render.js';
import { Rng, mixSeed } from '../synth/rng.js';

/** One evaluation clip: a scene under one condition, frames at the model input size. */
export interface EvalClip {
  condition: string;
  /** A composition never trained on (e.g. fog+night). */
  heldOut: boolean;
  /** RGB24 HWC frames, `width`×`height`. */
  frames: Uint8Array[];
  /** Class-index masks in the model's class order (255 = not scored). */
  masks: Uint8Array[];
  width: number;
  height: number;
}

/**
 * Seed of the rendered test set. Training renders from seeds 1 000 000 + 100 000·k and
 * training/evaluate.py from 9 000 000 + 100 000·k; this one lies in neither range.
 */
export const DEFAULT_EVAL_SEED = 7_300_001;

export const DEFAULT_EVAL_CONDITIONS = [
  'clear', 'fog', 'night', 'rain', 'snow', 'dusk',
  'fog+night', 'rain+dusk', 'snow+night', 'fog+dusk', 'rain+night', 'snow+dusk',
] as const;

function isHeldOut(condition: Condition): boolean {
  return condition.components.length > 1;
}

/** Maps synth class indices to the model's class indices by name (255 where the model lacks one). */
export function classRemap(modelClasses: readonly string[]): Uint8Array {
  const table = new Uint8Array(256).fill(255);
  CLASS_NAMES.forEach((name, i) => {
    const j = modelClasses.indexOf(name);
    if (j >= 0) table[i] = j;
  });
  return table;
}

/** Layout seed of clip `clip` of the `conditionIndex`-th condition (0-based) of a test set. */
export function clipSeed(seed: number, conditionIndex: number, clip: number): number {
  return mixSeed(seed, conditionIndex + 1, clip + 1);
}

export interface RenderTestSetOptions {
  seed: number;
  conditions: readonly string[];
  /** Clips (scenes, each its own street layout) per condition. */
  clips: number;
  /** Frames per clip (the camera moves between them). */
  frames: number;
  width: number;
  height: number;
  modelClasses: readonly string[];
  onClip?: (done: number, total: number) => void;
}

/** Renders clips with the synthetic renderer (src/synth): images and exact class masks. */
export function renderTestSet(options: RenderTestSetOptions): EvalClip[] {
  const remap = classRemap(options.modelClasses);
  const clips: EvalClip[] = [];
  const total = options.conditions.length * options.clips;
  options.conditions.forEach((name, ci) => {
    const condition = parseCondition(name);
    if (!condition) throw new InputError('E_INPUT_NOT_FOUND', `unknown condition "${name}" (e.g. fog, night, fog+night)`);
    const [lo, hi] = intensityRange(condition);
    for (let k = 0; k < options.clips; k++) {
      const seed = clipSeed(options.seed, ci, k);
      const rng = new Rng(seed);
      const layout = generateLayout(seed);
      const intensity = lo === hi ? lo : rng.range(lo, hi);
      const frames: Uint8Array[] = [];
      const masks: Uint8Array[] = [];
      for (let t = 0; t < options.frames; t++) {
        const f = renderFrame({ layout, t: t * 3, condition, intensity, width: options.width, height: options.height });
        frames.push(f.rgb);
        masks.push(f.mask.map((c) => remap[c]!));
      }
      clips.push({ condition: condition.name, heldOut: isHeldOut(condition), frames, masks, width: options.width, height: options.height });
      options.onClip?.(clips.length, total);
    }
  });
  return clips;
}

/**
 * Loads a test set in the stills layout `streamseg synth --stills` writes: DIR/meta.jsonl
 * (one JSON object per line with `id` and `condition`, optionally `clip` to group frames of
 * one scene), DIR/images/<id>.png and DIR/masks/<id>.png (class-index PNGs in the model's
 * class order). Images of another size are resized to the model input (masks: nearest).
 */
export async function loadTestSet(dir: string, width: number, height: number): Promise<EvalClip[]> {
  const metaFile = path.join(dir, 'meta.jsonl');
  let text: string;
  try {
    text = await readFile(metaFile, 'utf8');
  } catch (cause) {
    throw new InputError('E_INPUT_NOT_FOUND', `${metaFile}: cannot read (--data expects the stills layout: meta.jsonl, images/, masks/)`, { cause });
  }
  const groups = new Map<string, EvalClip>();
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  for (const [n, line] of lines.entries()) {
    let meta: { id?: unknown; condition?: unknown; clip?: unknown };
    try {
      meta = JSON.parse(line) as typeof meta;
    } catch (cause) {
      throw new InputError('E_INPUT_DECODE', `${metaFile}:${n + 1}: not JSON`, { cause });
    }
    const condition = parseCondition(String(meta.condition ?? ''));
    if (meta.id === undefined || !condition) throw new InputError('E_INPUT_DECODE', `${metaFile}:${n + 1}: needs "id" and a known "condition"`);
    const id = String(meta.id);
    const file = id.endsWith('.png') ? id : /^\d+$/.test(id) ? `${id.padStart(6, '0')}.png` : `${id}.png`;
    const image = await sharp(path.join(dir, 'images', file)).removeAlpha().resize(width, height, { fit: 'fill' }).raw().toBuffer();
    const mask = await sharp(path.join(dir, 'masks', file)).extractChannel(0).resize(width, height, { fit: 'fill', kernel: 'nearest' }).raw().toBuffer();
    const key = meta.clip === undefined ? `still:${id}` : `clip:${condition.name}:${String(meta.clip)}`;
    let clip = groups.get(key);
    if (!clip) {
      clip = { condition: condition.name, heldOut: isHeldOut(condition), frames: [], masks: [], width, height };
      groups.set(key, clip);
    }
    clip.frames.push(new Uint8Array(image));
    clip.masks.push(new Uint8Array(mask));
  }
  if (groups.size === 0) throw new InputError('E_INPUT_EMPTY', `${metaFile} lists no stills`);
  return [...groups.values()];
}
