/**
 * Pinhole camera over a flat ground plane (Y up, Z along the road). Pitch is
 * emulated by moving the principal point (the horizon row), which keeps vertical
 * edges vertical: cheap, and street scenes from a car look like that anyway.
 * All screen coordinates are in canvas samples (output pixels × supersampling).
 */
export interface CameraPose {
  /** World position; `height` is above the ground plane (m). */
  x: number;
  height: number;
  z: number;
  /** Rotation about the vertical axis, radians, positive turns right. */
  yaw: number;
  /**
   * Focal length as a fraction of the output's longer side (the width for landscape and
   * square frames; for portrait the height, like a camera turned upright: the same lens
   * sees a narrower, taller view of the same street, not a fisheye of sky and bonnet).
   */
  focal: number;
  /** Horizon row as a fraction of the output height. */
  horizon: number;
  /** Principal point column as a fraction of the output width. */
  center: number;
}

/** Camera-space points closer than this are clipped (m). */
export const NEAR = 0.4;

export class Camera {
  readonly x: number;
  readonly h: number;
  readonly z: number;
  readonly cos: number;
  readonly sin: number;
  /** Focal length, principal point: canvas samples. */
  readonly f: number;
  readonly cx: number;
  readonly cy: number;

  constructor(pose: CameraPose, width: number, height: number) {
    this.x = pose.x;
    this.h = pose.height;
    this.z = pose.z;
    this.cos = Math.cos(pose.yaw);
    this.sin = Math.sin(pose.yaw);
    this.f = pose.focal * Math.max(width, height);
    this.cx = pose.center * width;
    this.cy = pose.horizon * height;
  }

  /** Camera-space x (right) of a world point. */
  camX(X: number, Z: number): number {
    return this.cos * (X - this.x) - this.sin * (Z - this.z);
  }

  /** Camera-space depth (forward) of a world point. */
  camZ(X: number, Z: number): number {
    return this.sin * (X - this.x) + this.cos * (Z - this.z);
  }

  /** World-space ray direction through sample (px, py), scaled so camera-space z is 1. */
  dirX(px: number): number {
    return this.cos * ((px - this.cx) / this.f) + this.sin;
  }

  dirZ(px: number): number {
    return -this.sin * ((px - this.cx) / this.f) + this.cos;
  }

  dirY(py: number): number {
    return (this.cy - py) / this.f;
  }

  /**
   * Projects a world polygon (flat [X,Y,Z,...]) to screen after clipping it against
   * the near plane; returns flat [sx,sy,...] or null when nothing is in front.
   */
  projectPolygon(world: readonly number[]): number[] | null {
    const cam: number[] = [];
    for (let i = 0; i < world.length; i += 3) {
      const X = world[i] ?? 0;
      const Y = world[i + 1] ?? 0;
      const Z = world[i + 2] ?? 0;
      cam.push(this.camX(X, Z), Y - this.h, this.camZ(X, Z));
    }
    const clipped = clipNear(cam);
    if (clipped.length < 9) return null;
    const screen: number[] = [];
    for (let i = 0; i < clipped.length; i += 3) {
      const zc = clipped[i + 2] ?? NEAR;
      screen.push(this.cx + (this.f * (clipped[i] ?? 0)) / zc, this.cy - (this.f * (clipped[i + 1] ?? 0)) / zc);
    }
    return screen;
  }
}

/** Sutherland-Hodgman against z >= NEAR on flat camera-space [x,y,z,...]. */
function clipNear(pts: readonly number[]): number[] {
  const out: number[] = [];
  const n = pts.length / 3;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    const ax = pts[i * 3] ?? 0,
      ay = pts[i * 3 + 1] ?? 0,
      az = pts[i * 3 + 2] ?? 0;
    const bx = pts[j * 3] ?? 0,
      by = pts[j * 3 + 1] ?? 0,
      bz = pts[j * 3 + 2] ?? 0;
    const aIn = az >= NEAR;
    const bIn = bz >= NEAR;
    if (aIn) out.push(ax, ay, az);
    if (aIn !== bIn) {
      const t = (NEAR - az) / (bz - az);
      out.push(ax + (bx - ax) * t, ay + (by - ay) * t, NEAR);
    }
  }
  return out;
}
