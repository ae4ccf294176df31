import type { Camera } from '../camera.js';
import type { Canvas, Shade } from '../canvas.js';
import { C } from '../classes.js';
import type { Rgb } from '../color.js';
import type { Person } from '../scene-types.js';
import { drawBillboard } from './primitives.js';

const SHOE: Rgb = [0.08, 0.07, 0.07];

export function personPosition(p: Person, t: number): { x: number; z: number } {
  return { x: p.x0 + p.vx * t, z: p.z0 + p.vz * t };
}

/**
 * A walking person as a cut-out: head, torso, swinging arms and legs. The gait
 * phase advances with distance walked, so legs move only when the person does.
 */
export function drawPerson(canvas: Canvas, cam: Camera, p: Person, t: number): void {
  const { x, z } = personPosition(p, t);
  const speed = Math.hypot(p.vx, p.vz);
  const phase = p.phase0 + t * speed * 9;
  const swing = speed > 0 ? Math.sin(phase) * 0.2 * p.height : 0;
  const H = p.height;
  const headR = 0.07 * H;
  const headV = H - headR;
  const shoulder = H - 2 * headR - 0.04 * H;
  const hip = 0.5 * H;
  const halfW = p.width / 2;
  const legHalf = 0.045 * H;
  const armHalf = 0.032 * H;

  drawBillboard(canvas, cam, x, z, -halfW - 0.25 * H, halfW + 0.25 * H, 0, H, (u, v, s) => {
    // Head and hair.
    const dh = (u * u + (v - headV) * (v - headV)) / (headR * headR);
    if (dh < 1) {
      fill(s, v > headV + headR * 0.15 || dh > 0.75 ? p.hair : p.skin, 1);
      return C.person;
    }
    if (v > shoulder && v < headV - headR * 0.8 && Math.abs(u) < headR * 0.45) {
      fill(s, p.skin, 0.9);
      return C.person;
    }
    // Torso tapers from shoulders to hips.
    if (v >= hip - 0.04 * H && v <= shoulder) {
      const w = halfW * (0.78 + 0.22 * ((v - hip) / (shoulder - hip)));
      if (Math.abs(u) < w) {
        fill(s, p.shirt, 0.85 + 0.25 * (1 - Math.abs(u) / w));
        return C.person;
      }
    }
    // Arms hang from the shoulders and swing against the legs.
    for (let side = -1; side <= 1; side += 2) {
      const along = (shoulder - v) / (0.38 * H);
      if (along >= 0 && along <= 1) {
        const cu = side * (halfW + armHalf * 0.4) - side * swing * 0.5 * along;
        if (Math.abs(u - cu) < armHalf) {
          fill(s, along > 0.8 ? p.skin : p.shirt, 0.8);
          return C.person;
        }
      }
    }
    if (p.bag && v > hip - 0.12 * H && v < hip + 0.05 * H && u > halfW && u < halfW + 0.12 * H) {
      fill(s, p.bag, 0.9);
      return C.person;
    }
    // Legs: straight lines from the hips to feet that swing with the gait.
    if (v < hip) {
      const along = (hip - v) / hip;
      for (let side = -1; side <= 1; side += 2) {
        const cu = side * legHalf * 1.05 + side * swing * along;
        if (Math.abs(u - cu) < legHalf) {
          fill(s, v < 0.05 * H ? SHOE : p.pants, 0.85 + 0.15 * side);
          return C.person;
        }
      }
    }
    return -1;
  });
}

function fill(s: Shade, c: Rgb, k: number): void {
  s.r = c[0] * k;
  s.g = c[1] * k;
  s.b = c[2] * k;
}
