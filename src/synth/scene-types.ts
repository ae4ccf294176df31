import type { Rgb } from './color.js';

/**
 * A scene's world, generated once per seed. Everything that moves is a linear
 * function of the frame index `t`, so any frame renders independently (stills,
 * parallel rendering, seeking) and consecutive frames differ only by small motion.
 * World axes: X right of the road centre-line, Y up, Z along the road (m).
 */
export interface SceneLayout {
  seed: number;
  roadHalf: number;
  sidewalkW: number;
  /** Ground beyond the sidewalks: grass (vegetation) or paving (sidewalk). */
  verge: 'grass' | 'paving';
  /** Z ranges where a cross street replaces sidewalks and buildings. */
  crossStreets: { z0: number; z1: number }[];
  crosswalkZ: number | null;
  centreLine: 'dashed' | 'solid' | 'none';
  palette: Palette;
  camera: CameraMotion;
  buildings: Building[];
  /** Distant skyline across the horizon (class building) or tree line (vegetation). */
  skyline: { kind: 'building' | 'trees'; z: number; heights: number[]; color: Rgb; seed: number } | null;
  trees: Tree[];
  bushes: Bush[];
  poles: Pole[];
  vehicles: Vehicle[];
  persons: Person[];
}

export interface Palette {
  skyTop: Rgb;
  skyHorizon: Rgb;
  cloud: Rgb;
  cloudiness: number;
  road: Rgb;
  marking: Rgb;
  sidewalk: Rgb;
  curb: Rgb;
  grass: Rgb;
  paving: Rgb;
  /** Scene-wide brightness of the sun side vs the shade side of facades. */
  sunSide: -1 | 1;
}

export interface CameraMotion {
  x0: number;
  height: number;
  yaw0: number;
  focal0: number;
  horizon: number;
  center: number;
  /** Per-frame rates: forward speed (m), lateral drift (m), yaw (rad), relative zoom. */
  speed: number;
  driftX: number;
  yawRate: number;
  zoomRate: number;
  /** Gentle yaw oscillation amplitude (rad) and period (frames). */
  swayAmp: number;
  swayPeriod: number;
}

export interface Building {
  id: number;
  side: -1 | 1;
  /** Signed X of the facade plane. */
  x: number;
  z0: number;
  z1: number;
  height: number;
  /** How far the building extends away from the road behind the facade. */
  depth: number;
  wall: Rgb;
  trim: Rgb;
  glass: Rgb;
  floorH: number;
  bayW: number;
  winW: number;
  winH: number;
  shop: Rgb | null;
  litFraction: number;
  seed: number;
}

export interface Tree {
  x: number;
  z: number;
  trunkH: number;
  trunkW: number;
  blobs: { u: number; v: number; r: number }[];
  leaf: Rgb;
  bark: Rgb;
  seed: number;
}

export interface Bush {
  x: number;
  z: number;
  w: number;
  h: number;
  color: Rgb;
  seed: number;
}

export type PoleKind = 'lamp' | 'sign' | 'traffic';

export interface Pole {
  kind: PoleKind;
  x: number;
  z: number;
  height: number;
  width: number;
  color: Rgb;
  /** Direction of a lamp arm or sign offset: towards the road centre. */
  armDir: -1 | 1;
  sign: 'circle' | 'triangle' | 'rect' | 'diamond';
  signColor: Rgb;
  signInner: Rgb;
}

export type VehicleKind = 'car' | 'van' | 'truck' | 'bus';

export interface Vehicle {
  kind: VehicleKind;
  x: number;
  z0: number;
  /** Metres per frame along Z. */
  vz: number;
  width: number;
  length: number;
  height: number;
  body: Rgb;
  /** +1 drives away from the camera (we see its rear), -1 towards it (front). */
  heading: 1 | -1;
  seed: number;
}

export interface Person {
  x0: number;
  z0: number;
  vx: number;
  vz: number;
  height: number;
  width: number;
  skin: Rgb;
  shirt: Rgb;
  pants: Rgb;
  hair: Rgb;
  phase0: number;
  bag: Rgb | null;
}
