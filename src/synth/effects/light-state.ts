import type { Rgb } from '../color.js';

/**
 * Lighting decided by the time-of-day components and read by the weather ones: fog
 * veils and snow are only as bright as the light falling on them, and street lights
 * glow only when they are on.
 */
export interface LightState {
  /** Multiplier on surface albedo (1,1,1 in daylight). */
  ambient: [number, number, number];
  /** 0 (day) .. 1 (night): how strongly emissive surfaces and street lights shine. */
  lightsOn: number;
  /** Halo size multiplier (fog scatters light into large halos). */
  glowScale: number;
}

export function daylight(): LightState {
  return { ambient: [1, 1, 1], lightsOn: 0, glowScale: 1 };
}

/** A colour as seen under the current ambient light. */
export function lit(state: LightState, c: Rgb, floor = 0): Rgb {
  return [c[0] * Math.max(floor, state.ambient[0]), c[1] * Math.max(floor, state.ambient[1]), c[2] * Math.max(floor, state.ambient[2])];
}

export function luminance(r: number, g: number, b: number): number {
  return 0.299 * r + 0.587 * g + 0.114 * b;
}
