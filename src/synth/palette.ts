import { hsl, type Rgb } from './color.js';
import type { Palette } from './scene-types.js';
import type { Rng } from './rng.js';

/**
 * Per-scene colours. Every class gets a scene-level draw (and objects a per-object
 * draw on top) so a model cannot key on one colour per class: it has to use shape
 * and context.
 */
export function scenePalette(rng: Rng): Palette {
  const skyHue = rng.range(195, 232);
  const autumn = rng.chance(0.12);
  return {
    skyTop: hsl(skyHue, rng.range(0.35, 0.75), rng.range(0.42, 0.62)),
    skyHorizon: hsl(skyHue + rng.range(-12, 12), rng.range(0.2, 0.5), rng.range(0.74, 0.88)),
    cloud: hsl(rng.range(0, 360), rng.range(0, 0.08), rng.range(0.82, 0.96)),
    cloudiness: rng.chance(0.25) ? 0 : rng.range(0.1, 0.75),
    road: hsl(rng.range(0, 360), rng.range(0, 0.1), rng.range(0.2, 0.42)),
    marking: rng.chance(0.8) ? hsl(0, 0, rng.range(0.82, 0.95)) : hsl(rng.range(45, 55), 0.85, 0.6),
    sidewalk: hsl(rng.range(0, 360), rng.range(0, 0.25), rng.range(0.48, 0.72)),
    curb: hsl(rng.range(0, 360), rng.range(0, 0.06), rng.range(0.55, 0.8)),
    grass: autumn ? hsl(rng.range(28, 48), rng.range(0.4, 0.6), rng.range(0.3, 0.42)) : hsl(rng.range(72, 130), rng.range(0.3, 0.6), rng.range(0.22, 0.4)),
    paving: hsl(rng.range(0, 360), rng.range(0.05, 0.3), rng.range(0.42, 0.65)),
    sunSide: rng.sign(),
  };
}

/** A facade colour from one of a few families real streets use. */
export function wallColor(rng: Rng): Rgb {
  switch (rng.int(0, 5)) {
    case 0:
      return hsl(rng.range(2, 22), rng.range(0.35, 0.6), rng.range(0.28, 0.45)); // brick
    case 1:
      return hsl(rng.range(30, 48), rng.range(0.25, 0.5), rng.range(0.58, 0.76)); // sand
    case 2:
      return hsl(rng.range(0, 360), rng.range(0, 0.08), rng.range(0.5, 0.85)); // render / white
    case 3:
      return hsl(rng.range(0, 360), rng.range(0.25, 0.5), rng.range(0.55, 0.75)); // pastel
    case 4:
      return hsl(rng.range(0, 360), rng.range(0, 0.1), rng.range(0.25, 0.45)); // concrete
    default:
      return hsl(rng.range(190, 230), rng.range(0.15, 0.4), rng.range(0.32, 0.5)); // glass office
  }
}

export function vehicleColor(rng: Rng): Rgb {
  switch (rng.int(0, 7)) {
    case 0:
      return hsl(0, 0, rng.range(0.85, 0.95)); // white
    case 1:
      return hsl(0, 0, rng.range(0.05, 0.14)); // black
    case 2:
      return hsl(rng.range(200, 230), rng.range(0.03, 0.1), rng.range(0.55, 0.72)); // silver
    case 3:
      return hsl(0, 0, rng.range(0.3, 0.45)); // grey
    case 4:
      return hsl(rng.range(350, 365), rng.range(0.6, 0.85), rng.range(0.35, 0.5)); // red
    case 5:
      return hsl(rng.range(205, 235), rng.range(0.5, 0.8), rng.range(0.25, 0.45)); // blue
    case 6:
      return hsl(rng.range(0, 360), rng.range(0.4, 0.8), rng.range(0.3, 0.55)); // anything
    default:
      return hsl(rng.range(40, 55), rng.range(0.7, 0.9), rng.range(0.45, 0.55)); // yellow / taxi
  }
}

export function clothColor(rng: Rng): Rgb {
  return rng.chance(0.4) ? hsl(rng.range(0, 360), rng.range(0, 0.1), rng.range(0.08, 0.5)) : hsl(rng.range(0, 360), rng.range(0.3, 0.85), rng.range(0.2, 0.65));
}

export function skinColor(rng: Rng): Rgb {
  return hsl(rng.range(18, 32), rng.range(0.3, 0.55), rng.range(0.25, 0.72));
}

export function leafColor(rng: Rng, base: Rgb): Rgb {
  const j = rng.range(-0.06, 0.06);
  return [base[0] * rng.range(0.8, 1.2) + j, base[1] * rng.range(0.85, 1.2) + j, base[2] * rng.range(0.7, 1.2) + j];
}
