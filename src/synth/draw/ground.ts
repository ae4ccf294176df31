import type { Camera } from '../camera.js';
import type { Canvas, Shade } from '../canvas.js';
import { C } from '../classes.js';
import { valueNoise } from '../noise.js';
import type { SceneLayout } from '../scene-types.js';

/**
 * The ground plane, classified per sample from its world position: road (with
 * markings and crosswalks), curbs and sidewalks, then grass or paving beyond.
 * Cross streets cut through sidewalks as road.
 */
export function drawGround(canvas: Canvas, cam: Camera, layout: SceneLayout): void {
  const { roadHalf, sidewalkW, crossStreets, crosswalkZ, centreLine, palette } = layout;
  const seed = layout.seed ^ 0x6a;
  const walkEdge = roadHalf + sidewalkW;
  const grassVerge = layout.verge === 'grass';

  const road = (X: number, Z: number, t: number, s: Shade): number => {
    const grain = t < 30 ? 0.9 + 0.2 * valueNoise(X * 4, Z * 4, seed) * (1 - t / 30) : 0.95;
    const patch = 0.92 + 0.16 * valueNoise(X * 0.25, Z * 0.12, seed + 1);
    let k = grain * patch;
    const ax = Math.abs(X);
    let marking = false;
    if (centreLine !== 'none' && ax < 0.08) marking = centreLine === 'solid' || ((Z % 9) + 9) % 9 < 4.5;
    if (ax > roadHalf - 0.4 && ax < roadHalf - 0.25) marking = true;
    if (crosswalkZ !== null && Z > crosswalkZ && Z < crosswalkZ + 3.5 && (X + 60) % 1.2 < 0.6) marking = true;
    // Tyre tracks keep snow off parts of each lane.
    const lanePos = ((ax % 3.25) + 3.25) % 3.25;
    const track = Math.abs(lanePos - 0.8) < 0.25 || Math.abs(lanePos - 2.45) < 0.25;
    s.snow = (track ? 0.45 : 0.75) + (0.25 * (patch - 0.92)) / 0.16;
    if (marking) {
      k = 0.9 + 0.1 * grain;
      s.r = palette.marking[0] * k;
      s.g = palette.marking[1] * k;
      s.b = palette.marking[2] * k;
    } else {
      s.r = palette.road[0] * k;
      s.g = palette.road[1] * k;
      s.b = palette.road[2] * k;
    }
    return C.road;
  };

  const shader = (px: number, py: number, s: Shade): number => {
    const dy = (py - cam.cy) / cam.f;
    if (dy <= 1e-5) return -1;
    const t = cam.h / dy;
    const X = cam.x + t * cam.dirX(px);
    const Z = cam.z + t * cam.dirZ(px);
    s.depth = t;
    const ax = Math.abs(X);
    if (ax < roadHalf) return road(X, Z, t, s);
    for (const c of crossStreets) {
      if (Z >= c.z0 && Z < c.z1) {
        const edge = Math.min(Z - c.z0, c.z1 - Z);
        if (edge > Math.min(sidewalkW, (c.z1 - c.z0) * 0.3)) return road(X, Z, t, s);
        return sidewalk(X, Z, t, Math.min(edge, ax - roadHalf), s);
      }
    }
    if (ax < walkEdge) return sidewalk(X, Z, t, ax - roadHalf, s);
    const n = t < 60 ? valueNoise(X * 1.3, Z * 1.3, seed + 5) : 0.5;
    s.snow = 0.85 + 0.15 * n;
    if (grassVerge) {
      const k = 0.75 + 0.5 * n;
      s.r = palette.grass[0] * k;
      s.g = palette.grass[1] * k;
      s.b = palette.grass[2] * k;
      return C.vegetation;
    }
    const k = 0.88 + 0.24 * n;
    s.r = palette.paving[0] * k;
    s.g = palette.paving[1] * k;
    s.b = palette.paving[2] * k;
    return C.sidewalk;
  };

  const sidewalk = (X: number, Z: number, t: number, fromCurb: number, s: Shade): number => {
    s.snow = 0.9;
    if (fromCurb < 0.22) {
      const k = 1;
      s.r = palette.curb[0] * k;
      s.g = palette.curb[1] * k;
      s.b = palette.curb[2] * k;
      return C.sidewalk;
    }
    const fx = (((X / 0.6) % 1) + 1) % 1;
    const fz = (((Z / 0.6) % 1) + 1) % 1;
    const joint = fx < 0.07 || fz < 0.07 ? 0.16 * Math.max(0, 1 - t / 25) : 0;
    const k = (t < 60 ? 0.9 + 0.2 * valueNoise(X * 0.7, Z * 0.7, seed + 6) : 1) * (1 - joint);
    s.r = palette.sidewalk[0] * k;
    s.g = palette.sidewalk[1] * k;
    s.b = palette.sidewalk[2] * k;
    return C.sidewalk;
  };

  const y0 = Math.max(0, Math.floor(cam.cy));
  for (let y = y0; y < canvas.height; y++) canvas.fillSpan(y, 0, canvas.width, shader);
}
