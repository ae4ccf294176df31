import type { Camera } from '../camera.js';
import type { Canvas, Shade } from '../canvas.js';
import { C } from '../classes.js';
import type { Rgb } from '../color.js';
import type { Pole } from '../scene-types.js';
import { billboardScale, drawBillboard } from './primitives.js';

/** Thin structures are widened to at least this many model-input pixels (canvas.unit) so they stay learnable. */
const MIN_PIXELS = 1.6;
const LAMP: Rgb = [1.0, 0.85, 0.55];

/** Street lamps, sign posts and traffic lights (all class `pole`). */
export function drawPole(canvas: Canvas, cam: Camera, p: Pole): void {
  const k = billboardScale(cam, p.x, p.z);
  if (k === 0) return;
  const minW = (MIN_PIXELS * canvas.unit * canvas.ss) / k;
  const w = Math.max(p.width, minW);
  const half = w / 2;
  const H = p.height;
  const arm = p.armDir;
  const armLen = 1.6;
  const bar = Math.max(0.1, minW);

  const frame = drawBillboard(canvas, cam, p.x, p.z, -armLen - 0.6, armLen + 0.6, 0, H + 0.6, (u, v, s) => {
    if (Math.abs(u) < half && v < H) {
      fill(s, p.color, 0.8 + 0.4 * (1 - Math.abs(u) / half));
      return C.pole;
    }
    if (p.kind === 'lamp') {
      const au = u * arm;
      if (au > 0 && au < armLen && v > H - bar && v < H + bar * 0.2) {
        fill(s, p.color, 1);
        return C.pole;
      }
      if (au > armLen - 0.6 && au < armLen + 0.1 && v > H - 0.28 && v < H - bar * 0.5) {
        fill(s, [0.75, 0.75, 0.7], 1);
        s.er = LAMP[0] * 1.5;
        s.eg = LAMP[1] * 1.5;
        s.eb = LAMP[2] * 1.5;
        return C.pole;
      }
      return -1;
    }
    if (p.kind === 'traffic') {
      const du = u - arm * 0.05;
      if (Math.abs(du) < 0.18 && v > H - 0.95 && v < H) {
        const slot = Math.floor((H - v) / 0.32);
        const lv = H - 0.16 - slot * 0.32;
        const on = slot === ((p.z * 7) | 0) % 3;
        if (du * du + (v - lv) * (v - lv) < 0.11 * 0.11) {
          const c: Rgb = slot === 0 ? [0.9, 0.1, 0.05] : slot === 1 ? [0.95, 0.7, 0.05] : [0.1, 0.85, 0.35];
          fill(s, c, on ? 1 : 0.3);
          if (on) {
            s.er = c[0] * 1.5;
            s.eg = c[1] * 1.5;
            s.eb = c[2] * 1.5;
          }
        } else fill(s, [0.08, 0.08, 0.08], 1);
        return C.pole;
      }
      return -1;
    }
    return sign(p, u, v - (H - 0.38), s);
  });

  if (frame && p.kind === 'lamp') {
    const x = (frame.sx + arm * (armLen - 0.25) * frame.k) / canvas.ss;
    const y = (frame.sy - (H - 0.25) * frame.k) / canvas.ss;
    const r = (frame.k / canvas.ss) * 0.35;
    canvas.lights.push({ x, y, radius: Math.max(1.2 * canvas.unit, r), color: LAMP, kind: 'glow', depth: frame.depth });
    canvas.lights.push({ x, y: frame.sy / canvas.ss, radius: Math.max(4 * canvas.unit, r * 12), color: LAMP, kind: 'pool', depth: frame.depth });
  }
}

/** A traffic sign centred at (0, 0) in metres; -1 outside it. */
function sign(p: Pole, u: number, v: number, s: Shade): number {
  const r = 0.34;
  let inside: boolean;
  let inner: boolean;
  switch (p.sign) {
    case 'circle': {
      const d = Math.hypot(u, v);
      inside = d < r;
      inner = d < r * 0.72;
      break;
    }
    case 'triangle': {
      const y = v + r * 0.5;
      inside = y > 0 && y < r * 1.5 && Math.abs(u) < (r * 1.5 - y) * 0.66;
      inner = y > 0.07 && y < r * 1.2 && Math.abs(u) < (r * 1.2 - y) * 0.5;
      break;
    }
    case 'diamond':
      inside = Math.abs(u) + Math.abs(v) < r;
      inner = Math.abs(u) + Math.abs(v) < r * 0.8;
      break;
    default:
      inside = Math.abs(u) < r * 1.1 && Math.abs(v) < r * 0.75;
      inner = Math.abs(u) < r * 0.95 && Math.abs(v) < r * 0.6;
  }
  if (!inside) return -1;
  fill(s, inner && p.sign !== 'diamond' && p.sign !== 'rect' ? p.signInner : p.signColor, 1);
  return C.pole;
}

function fill(s: Shade, c: Rgb, k: number): void {
  s.r = c[0] * k;
  s.g = c[1] * k;
  s.b = c[2] * k;
}
