import type { Condition } from '../conditions.js';
import type { FrameBuffers } from '../frame-buffers.js';
import { Rng } from '../rng.js';
import { applyVeil } from './fog.js';
import { applyGlows } from './glow.js';
import { daylight, lit } from './light-state.js';
import { applyLighting } from './lighting.js';
import { rainGrade, rainReflections, rainStreaks, rainSurface } from './rain.js';
import { exposure, sensorNoise } from './sensor.js';
import { snowFlakes, snowGrade, snowSurface } from './snow.js';
import { duskLight, duskSky, nightLight, nightSky } from './time-of-day.js';

export interface ConditionParams {
  condition: Condition;
  /** 0..1; one intensity drives every component of a composed condition. */
  intensity: number;
  sceneSeed: number;
  /** Frame index within the scene (animates rain, snow and noise). */
  t: number;
  /** Output row of the horizon (sky gradients are anchored to it). */
  horizonRow: number;
}

const FOG = [0.8, 0.79, 0.76] as const;
const SNOW_VEIL = [0.84, 0.89, 0.97] as const;
const RAIN_VEIL = [0.52, 0.55, 0.6] as const;

/**
 * Applies a condition to a rendered frame, in physical order whatever the
 * components: surface changes (snow cover, wetness), lighting (time of day, lamps,
 * emission), atmosphere (reflections, fog, haze), falling particles, light halos,
 * then colour grading and sensor noise. Only `fb.rgb` changes; the mask is untouched.
 */
export function applyCondition(fb: FrameBuffers, p: ConditionParams): void {
  const has = new Set(p.condition.components);
  const s = has.has('clear') ? 0 : p.intensity;
  const sceneRng = new Rng(p.sceneSeed ^ 0xe1);
  const state = daylight();

  if (has.has('snow')) snowSurface(fb, s);
  if (has.has('rain')) rainSurface(fb, s);

  if (has.has('night')) nightLight(s, state);
  if (has.has('dusk')) duskLight(s, state);
  if (has.has('rain')) state.ambient = state.ambient.map((a) => a * (1 - 0.3 * s)) as [number, number, number];
  applyLighting(fb, state);
  if (has.has('night')) nightSky(fb, s, p.horizonRow);
  if (has.has('dusk')) duskSky(fb, has.has('rain') ? s * 0.6 : s, p.horizonRow, sceneRng.range(0, fb.width));

  if (has.has('rain')) {
    rainReflections(fb, s);
    applyVeil(fb, 0.012 * s, lit(state, RAIN_VEIL, 0.06), 0.06 * s);
  }
  if (has.has('fog')) {
    state.glowScale = 1 + 1.5 * s;
    const glowLift = 0.06 * state.lightsOn;
    const veil = lit(state, FOG, 0.08);
    applyVeil(fb, 0.06 * s, [veil[0] + glowLift, veil[1] + glowLift * 0.85, veil[2] + glowLift * 0.6], 0.12 * s);
  }
  if (has.has('snow')) applyVeil(fb, 0.012 * s, lit(state, SNOW_VEIL, 0.08), 0.04 * s);

  if (has.has('rain')) rainStreaks(fb, s, state, p.sceneSeed, p.t);
  if (has.has('snow')) snowFlakes(fb, s, state, p.sceneSeed, p.t);
  applyGlows(fb, state);

  if (has.has('rain')) rainGrade(fb, s);
  if (has.has('snow')) snowGrade(fb, s, state);
  sensorNoise(fb, 0.006 + 0.03 * state.lightsOn, p.sceneSeed, p.t);
  const gain = sceneRng.range(0.93, 1.07);
  exposure(fb, [gain * sceneRng.range(0.97, 1.03), gain, gain * sceneRng.range(0.97, 1.03)]);
}
