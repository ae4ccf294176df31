/**
 * Imaging conditions. A condition is one component or a weather+time-of-day pair
 * ("fog+night"); each is applied photometrically to the image only, never the mask.
 */
export const WEATHER = ['fog', 'rain', 'snow'] as const;
export const TIME_OF_DAY = ['night', 'dusk'] as const;
export type Weather = (typeof WEATHER)[number];
export type TimeOfDay = (typeof TIME_OF_DAY)[number];
export type Component = 'clear' | Weather | TimeOfDay;

export const BASE_CONDITIONS = ['clear', 'fog', 'night', 'rain', 'snow', 'dusk'] as const;
export const COMPOSED_CONDITIONS = ['fog+night', 'rain+dusk', 'snow+night', 'fog+dusk', 'rain+night', 'snow+dusk'] as const;
export const CONDITIONS = [...BASE_CONDITIONS, ...COMPOSED_CONDITIONS] as const;
export type ConditionName = (typeof CONDITIONS)[number];

export interface Condition {
  name: ConditionName;
  /** Components in the canonical order weather-then-time ("fog", "night"). */
  components: Component[];
}

/** Intensity range drawn for stills and scenes: strong enough to hurt a clear-only model. */
export const INTENSITY_RANGE: Readonly<Record<Component, readonly [number, number]>> = {
  clear: [0, 0],
  fog: [0.5, 1],
  rain: [0.5, 1],
  snow: [0.5, 1],
  night: [0.5, 1],
  dusk: [0.5, 1],
};

/**
 * Parses "fog", "night+fog", "fog+night" (order-insensitive) into the canonical
 * condition, or returns null when it is not one we render.
 */
export function parseCondition(text: string): Condition | null {
  const parts = text
    .trim()
    .toLowerCase()
    .split('+')
    .map((p) => p.trim());
  if (parts.length === 1) {
    const name = BASE_CONDITIONS.find((c) => c === parts[0]);
    return name ? { name, components: [name] } : null;
  }
  if (parts.length !== 2) return null;
  const weather = WEATHER.find((w) => parts.includes(w));
  const time = TIME_OF_DAY.find((t) => parts.includes(t));
  if (!weather || !time) return null;
  const name = `${weather}+${time}` as ConditionName;
  return CONDITIONS.includes(name) ? { name, components: [weather, time] } : null;
}

/** Intensity range of a (possibly composed) condition: the narrowest common range. */
export function intensityRange(condition: Condition): readonly [number, number] {
  let lo = 0;
  let hi = 1;
  for (const c of condition.components) {
    const [a, b] = INTENSITY_RANGE[c];
    lo = Math.max(lo, a);
    hi = Math.min(hi, b);
  }
  return condition.components.includes('clear') ? [0, 0] : [lo, hi];
}
