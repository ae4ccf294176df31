import type { Camera } from '../camera.js';
import { NEAR } from '../camera.js';
import type { Canvas, Shade } from '../canvas.js';
import { C } from '../classes.js';
import { mix, type Rgb } from '../color.js';
import type { Vehicle } from '../scene-types.js';
import { drawAxisQuad, type FaceMaterial } from './primitives.js';

const TYRE: Rgb = [0.05, 0.05, 0.06];
const GLASS: Rgb = [0.1, 0.13, 0.17];
const TAIL: Rgb = [0.75, 0.05, 0.05];
const HEAD: Rgb = [0.92, 0.92, 0.85];

interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  z0: number;
  z1: number;
}

/** Near Z of a vehicle at frame t (its rear when driving away, its front when oncoming). */
export function vehicleZ(v: Vehicle, t: number): number {
  return v.z0 + v.vz * t;
}

/**
 * A vehicle as a few boxes (wheels, body, cabin or cargo box) drawn as their
 * camera-facing faces; details (lights, plates, windows) are face materials.
 */
export function drawVehicle(canvas: Canvas, cam: Camera, v: Vehicle, t: number): void {
  const z0 = vehicleZ(v, t);
  const z1 = z0 + v.length;
  if (z1 < cam.z + NEAR) return;
  const x0 = v.x - v.width / 2;
  const x1 = v.x + v.width / 2;
  const front = v.heading === -1; // face at z0 is the front
  const body = v.body;
  const tall = v.kind !== 'car';
  const bodyTop = v.kind === 'car' ? v.height * 0.64 : v.kind === 'truck' ? 1.3 : v.height;
  const wheelR = v.kind === 'car' ? 0.32 : 0.5;

  const lightsY0 = bodyTop - (tall ? 0.9 : 0.28);
  const nearFace: FaceMaterial = (X, Y, s) => {
    const du = Math.abs(X - v.x);
    const half = v.width / 2;
    if (Y > lightsY0 && Y < lightsY0 + 0.2 && du > half - 0.38 && du < half - 0.06) {
      if (front) {
        paintRgb(s, HEAD, 1);
        s.er = 1.6;
        s.eg = 1.5;
        s.eb = 1.2;
      } else {
        paintRgb(s, TAIL, 1);
        s.er = 1.3;
        s.eg = 0.1;
        s.eb = 0.08;
      }
      return C.vehicle;
    }
    if (du < 0.26 && Y > 0.42 && Y < 0.56) {
      paintRgb(s, [0.85, 0.85, 0.8], 1);
      return C.vehicle;
    }
    if (Y < 0.42) {
      paintRgb(s, body, 0.55);
      return C.vehicle;
    }
    if (tall && v.kind !== 'truck' && Y > v.height * 0.55 && Y < v.height - 0.2 && du < half - 0.12) {
      paintRgb(s, GLASS, 1 + (Y / v.height) * 0.6);
      return C.vehicle;
    }
    if (front && du < half - 0.45 && Y > 0.5 && Y < lightsY0 + 0.15) {
      paintRgb(s, body, 0.35); // grille
      return C.vehicle;
    }
    paintRgb(s, body, 0.92);
    return C.vehicle;
  };
  const sideFace =
    (len: number): FaceMaterial =>
    (Z, Y, s) => {
      const u = Z - z0;
      if (tall && v.kind !== 'truck' && Y > v.height * 0.55 && Y < v.height - 0.25 && u > 0.4 && u < len - 0.4 && u % 1.6 > 0.15) {
        paintRgb(s, GLASS, 1.2);
        return C.vehicle;
      }
      paintRgb(s, body, Y < 0.45 ? 0.5 : 0.78);
      return C.vehicle;
    };
  const topFace: FaceMaterial = (_X, _Z, s) => {
    paintRgb(s, body, 1.08);
    s.snow = 1;
    return C.vehicle;
  };
  if (v.kind === 'car') {
    const cz0 = front ? z0 + v.length * 0.32 : z0 + v.length * 0.2;
    const cz1 = front ? z1 - v.length * 0.18 : z1 - v.length * 0.3;
    const cabin = { x0: x0 + 0.12, x1: x1 - 0.12, y0: bodyTop, y1: v.height, z0: cz0, z1: cz1 };
    drawBox(canvas, cam, cabin, (face) => (a, b, s) => {
      if (face === 'top') {
        paintRgb(s, body, 1.05);
        s.snow = 1;
        return C.vehicle;
      }
      const edge = face === 'near' ? Math.abs(a - v.x) > v.width / 2 - 0.25 : a < cz0 + 0.12 || a > cz1 - 0.12 || Math.abs(a - (cz0 + cz1) / 2) < 0.06;
      if (edge || b > v.height - 0.06) paintRgb(s, body, 0.85);
      else paintRgb(s, GLASS, 1 + (b - bodyTop) * 1.5);
      return C.vehicle;
    });
  } else if (v.kind === 'truck') {
    // Cab in front, cargo box behind it; which one faces the camera depends on heading.
    const cabLen = 2.2;
    const cab = front ? { z0, z1: z0 + cabLen } : { z0: z1 - cabLen, z1 };
    const cargo = front ? { z0: z0 + cabLen + 0.2, z1 } : { z0, z1: z1 - cabLen - 0.2 };
    const cargoColor = mix(body, [0.9, 0.9, 0.9], 0.6);
    const drawCab = (): void =>
      drawBox(canvas, cam, { x0, x1, y0: bodyTop, y1: v.height * 0.8, z0: cab.z0, z1: cab.z1 }, (face) => (a, b, s) => {
        const glassHit = face === 'near' && front && b > v.height * 0.5 && Math.abs(a - v.x) < v.width / 2 - 0.15;
        paintRgb(s, glassHit ? GLASS : body, glassHit ? 1.3 : face === 'top' ? 1.05 : 0.85);
        if (face === 'top') s.snow = 1;
        return C.vehicle;
      });
    const drawCargo = (): void =>
      drawBox(canvas, cam, { x0, x1, y0: 1.0, y1: v.height, z0: cargo.z0, z1: cargo.z1 }, (face) => (_a, b, s) => {
        paintRgb(s, cargoColor, face === 'top' ? 1.05 : face === 'side' ? 0.8 : 0.95 - (b > v.height - 0.2 ? 0.2 : 0));
        if (face === 'top') s.snow = 1;
        return C.vehicle;
      });
    if (front) {
      drawCab();
      drawCargo();
    } else {
      drawCargo();
      drawCab();
    }
  }

  // Cabin / cab / cargo sit on or beside the body and are drawn before it.
  const bodyBox = { x0, x1, y0: 0.28, y1: bodyTop, z0, z1 };
  drawBox(canvas, cam, bodyBox, (face) => (face === 'near' ? nearFace : face === 'side' ? sideFace(v.length) : topFace));

  // Wheels last (front-to-back canvas): the body hides their upper halves.
  for (const wz of [z0 + 0.45 + wheelR, z1 - 0.45 - wheelR]) {
    for (const wx of [x0, x1 - 0.24]) {
      drawBox(canvas, cam, { x0: wx, x1: wx + 0.24, y0: 0, y1: wheelR * 2, z0: wz - wheelR, z1: wz + wheelR }, () => {
        return (_a, _b, s) => {
          paintRgb(s, TYRE, 1);
          return C.vehicle;
        };
      });
    }
  }

  const lightY = lightsY0 + 0.1;
  for (const lx of [x0 + 0.22, x1 - 0.22]) {
    const zc = cam.camZ(lx, z0);
    if (zc < NEAR + 0.3 || cam.z > z0) continue;
    const k = cam.f / zc / canvas.ss;
    canvas.lights.push({
      x: (cam.cx + (cam.camX(lx, z0) * cam.f) / zc) / canvas.ss,
      y: (cam.cy - ((lightY - cam.h) * cam.f) / zc) / canvas.ss,
      radius: front ? Math.max(1.2 * canvas.unit, k * 0.22) : Math.max(0.8 * canvas.unit, k * 0.1),
      color: front ? [1, 0.95, 0.8] : [1, 0.12, 0.08],
      kind: 'glow',
      depth: zc,
    });
  }
}

type FaceKind = 'near' | 'side' | 'top';

/** Draws the faces of an axis-aligned box that face the camera. */
function drawBox(canvas: Canvas, cam: Camera, b: Box, material: (face: FaceKind) => FaceMaterial): void {
  if (cam.h > b.y1) drawAxisQuad(canvas, cam, 'y', b.y1, b.x0, b.x1, b.z0, b.z1, material('top'));
  if (cam.x < b.x0) drawAxisQuad(canvas, cam, 'x', b.x0, b.z0, b.z1, b.y0, b.y1, material('side'));
  if (cam.x > b.x1) drawAxisQuad(canvas, cam, 'x', b.x1, b.z0, b.z1, b.y0, b.y1, material('side'));
  if (cam.z < b.z0) drawAxisQuad(canvas, cam, 'z', b.z0, b.x0, b.x1, b.y0, b.y1, material('near'));
}

function paintRgb(s: Shade, c: Rgb, k: number): void {
  s.r = c[0] * k;
  s.g = c[1] * k;
  s.b = c[2] * k;
}
