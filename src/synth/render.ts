import { parseCondition, type Condition } from './conditions.js';
import { applyCondition } from './effects/apply-condition.js';
import { toRgb8 } from './effects/sensor.js';
import { generateLayout } from './layout.js';
import { cameraPose, renderGeometry } from './render-geometry.js';
import type { SceneLayout } from './scene-types.js';

/** Supersampling factor per axis: 2 gives antialiased edges at 4 samples per pixel. */
export const DEFAULT_SUPERSAMPLE = 2;

export interface RenderedFrame {
  width: number;
  height: number;
  /** Interleaved 8-bit RGB, row-major. */
  rgb: Uint8Array;
  /** One class index (see CLASSES) per pixel. */
  mask: Uint8Array;
}

export interface FrameRequest {
  layout: SceneLayout;
  /** Frame index within the scene. */
  t: number;
  condition: Condition;
  intensity: number;
  width: number;
  height: number;
  supersample?: number;
}

/** Renders one frame of a scene under a condition: image and its exact class mask. */
export function renderFrame(req: FrameRequest): RenderedFrame {
  const ss = req.supersample ?? DEFAULT_SUPERSAMPLE;
  const fb = renderGeometry(req.layout, req.t, req.width, req.height, ss);
  const mask = fb.cls;
  applyCondition(fb, {
    condition: req.condition,
    intensity: req.intensity,
    sceneSeed: req.layout.seed,
    t: req.t,
    horizonRow: cameraPose(req.layout, req.t).horizon * req.height,
  });
  return { width: req.width, height: req.height, rgb: toRgb8(fb), mask };
}

export interface SceneRequest {
  seed: number;
  condition?: string | Condition;
  intensity?: number;
  t?: number;
  width?: number;
  height?: number;
  supersample?: number;
}

/** Convenience: generate the layout for `seed` and render one frame (defaults: clear, 256x256, t=0). */
export function renderScene(req: SceneRequest): RenderedFrame {
  const condition = typeof req.condition === 'string' ? parseCondition(req.condition) : (req.condition ?? parseCondition('clear'));
  if (!condition) throw new RangeError(`unknown condition ${String(req.condition)}`);
  return renderFrame({
    layout: generateLayout(req.seed),
    t: req.t ?? 0,
    condition,
    intensity: req.intensity ?? 0,
    width: req.width ?? 256,
    height: req.height ?? 256,
    supersample: req.supersample,
  });
}
