import { hsl, mix, type Rgb } from './color.js';
import { clothColor, leafColor, scenePalette, skinColor, vehicleColor, wallColor } from './palette.js';
import { Rng } from './rng.js';
import type { Building, Bush, Person, Pole, SceneLayout, Tree, Vehicle, VehicleKind } from './scene-types.js';

/** Buildings, trees and poles are laid out over this stretch of road (m). */
const WORLD_Z0 = -30;
const WORLD_Z1 = 230;

/** Camera motion over a whole scene stays within these, however long the scene. */
const MAX_TRAVEL = 110;
const MAX_YAW_CHANGE = 0.25;
const MAX_ZOOM_CHANGE = 0.3;
const MAX_DRIFT = 1.5;

/**
 * Generates a street scene from a seed: road cross-section, camera and its motion,
 * buildings, vegetation, street furniture and traffic. Pure function of the seed and
 * `frames`, the scene's length, which only caps the camera's per-frame motion so a
 * long scene neither drives past the end of the street nor pans off it.
 */
export function generateLayout(seed: number, frames = 48): SceneLayout {
  const rng = new Rng(seed);
  const palette = scenePalette(rng);
  const lanesPerDir = rng.chance(0.45) ? 2 : 1;
  const laneW = rng.range(2.9, 3.6);
  const parking = rng.chance(0.5) ? rng.range(2.0, 2.4) : 0;
  const roadHalf = lanesPerDir * laneW + parking;
  const sidewalkW = rng.range(2.2, 5.5);
  const style = rng.pick(['downtown', 'urban', 'urban', 'suburb'] as const);

  const crossStreets: { z0: number; z1: number }[] = [];
  if (rng.chance(0.45)) {
    const z0 = rng.range(25, 90);
    crossStreets.push({ z0, z1: z0 + rng.range(9, 16) });
  }
  const crosswalkZ = rng.chance(0.4) ? (crossStreets[0] ? crossStreets[0].z0 - 4 : rng.range(10, 40)) : null;

  const rightLane = lanesPerDir === 1 ? laneW / 2 : laneW * rng.pick([0.5, 1.5]);
  const still = rng.chance(0.15);
  const camera = {
    x0: rightLane + rng.range(-0.6, 0.6) - (lanesPerDir === 1 && rng.chance(0.3) ? laneW / 2 : 0),
    height: rng.range(1.25, 2.3),
    yaw0: rng.range(-0.13, 0.13),
    focal0: rng.range(0.68, 1.05),
    horizon: rng.range(0.36, 0.5),
    center: 0.5 + rng.range(-0.04, 0.04),
    speed: still ? 0 : rng.range(0.03, 0.28),
    driftX: rng.range(-0.01, 0.01),
    yawRate: rng.range(-0.0015, 0.0015),
    zoomRate: rng.chance(0.3) ? rng.range(-0.003, 0.003) : 0,
    swayAmp: rng.range(0, 0.01),
    swayPeriod: rng.range(40, 120),
  };

  const span = Math.max(1, frames);
  camera.speed = Math.min(camera.speed, MAX_TRAVEL / span);
  camera.yawRate = Math.sign(camera.yawRate) * Math.min(Math.abs(camera.yawRate), MAX_YAW_CHANGE / span);
  camera.zoomRate = Math.sign(camera.zoomRate) * Math.min(Math.abs(camera.zoomRate), MAX_ZOOM_CHANGE / span);
  camera.driftX = Math.sign(camera.driftX) * Math.min(Math.abs(camera.driftX), MAX_DRIFT / span);

  const inCross = (z0: number, z1: number): boolean => crossStreets.some((c) => z1 > c.z0 - 1 && z0 < c.z1 + 1);
  const buildings: Building[] = [];
  const trees: Tree[] = [];
  const bushes: Bush[] = [];
  const foliage = mix(palette.grass, hsl(rng.range(80, 140), 0.45, 0.3), rng.range(0.2, 0.7));
  const parkSide = rng.chance(0.2) ? rng.sign() : 0;

  for (const side of [-1, 1] as const) {
    const buildingLine = roadHalf + sidewalkW;
    if (side === parkSide) {
      for (let z = WORLD_Z0; z < WORLD_Z1; z += rng.range(4, 12)) {
        trees.push(makeTree(rng, side * (buildingLine + rng.range(1, 14)), z, foliage));
        if (rng.chance(0.5)) bushes.push(makeBush(rng, side * (buildingLine + rng.range(0.3, 3)), z + rng.range(0, 4), foliage));
      }
      continue;
    }
    let z = WORLD_Z0 + rng.range(0, 10);
    while (z < WORLD_Z1) {
      const length = style === 'downtown' ? rng.range(12, 35) : rng.range(7, 24);
      const gapP = style === 'suburb' ? 0.5 : style === 'urban' ? 0.2 : 0.05;
      if (inCross(z, z + length)) {
        z = (crossStreets.find((c) => z + length > c.z0 - 1)?.z1 ?? z) + 1.5;
        continue;
      }
      if (rng.chance(gapP)) {
        const gap = rng.range(3, 12);
        trees.push(makeTree(rng, side * (buildingLine + rng.range(2, 8)), z + gap / 2, foliage));
        z += gap;
        continue;
      }
      const setback = style === 'suburb' ? rng.range(1, 6) : rng.chance(0.3) ? rng.range(0.3, 2.5) : 0;
      const height = style === 'downtown' ? rng.range(15, 60) : style === 'urban' ? rng.range(8, 28) : rng.range(5, 11);
      const wall = wallColor(rng);
      buildings.push({
        id: buildings.length,
        side,
        x: side * (buildingLine + setback),
        z0: z,
        z1: z + length,
        height,
        depth: rng.range(8, 20),
        wall,
        trim: mix(wall, rng.chance(0.5) ? hsl(0, 0, 0.92) : hsl(0, 0, 0.15), rng.range(0.3, 0.7)),
        glass: hsl(rng.range(190, 230), rng.range(0.1, 0.35), rng.range(0.12, 0.35)),
        floorH: rng.range(2.9, 3.8),
        bayW: rng.range(1.8, 3.6),
        winW: rng.range(0.35, 0.8),
        winH: rng.range(0.35, 0.7),
        shop: height > 7 && rng.chance(0.6) ? hsl(rng.range(0, 360), rng.range(0.4, 0.9), rng.range(0.3, 0.6)) : null,
        litFraction: rng.range(0.2, 0.7),
        seed: rng.seed(),
      });
      if (setback > 1.2 && rng.chance(0.6)) bushes.push(makeBush(rng, side * (buildingLine + 0.6), z + rng.range(1, length - 1), foliage));
      z += length + (rng.chance(0.3) ? rng.range(0.5, 3) : 0);
    }
  }

  // Street trees in pits along the curb side of the sidewalk.
  if (rng.chance(0.6)) {
    const spacing = rng.range(8, 18);
    for (const side of [-1, 1] as const) {
      if (rng.chance(0.25)) continue;
      for (let z = WORLD_Z0 + rng.range(0, spacing); z < WORLD_Z1; z += spacing * rng.range(0.8, 1.2)) {
        if (!inCross(z - 2, z + 2)) trees.push(makeTree(rng, side * (roadHalf + Math.min(1.2, sidewalkW * 0.35)), z, foliage));
      }
    }
  }

  const poles = makePoles(rng, roadHalf, sidewalkW, inCross, crossStreets);
  const vehicles = makeVehicles(rng, lanesPerDir, laneW, parking, roadHalf, camera.x0, camera.speed);
  const persons = makePersons(rng, roadHalf, sidewalkW, crosswalkZ);

  const skylineKind = rng.chance(0.65) ? 'building' : 'trees';
  const heights: number[] = [];
  for (let i = 0; i < 80; i++) heights.push(skylineKind === 'building' ? rng.range(10, 70) : rng.range(8, 18));

  return {
    seed,
    roadHalf,
    sidewalkW,
    verge: rng.chance(0.5) ? 'grass' : 'paving',
    crossStreets,
    crosswalkZ,
    centreLine: lanesPerDir === 2 || rng.chance(0.6) ? rng.pick(['dashed', 'solid'] as const) : 'none',
    palette,
    camera,
    buildings,
    skyline: rng.chance(0.85)
      ? {
          kind: skylineKind,
          z: rng.range(260, 360),
          heights,
          color: skylineKind === 'building' ? mix(wallColor(rng), palette.skyHorizon, 0.35) : mix(foliage, palette.skyHorizon, 0.2),
          seed: rng.seed(),
        }
      : null,
    trees,
    bushes,
    poles,
    vehicles,
    persons,
  };
}

function makeTree(rng: Rng, x: number, z: number, foliage: Rgb): Tree {
  const r = rng.range(1.3, 3.4);
  const trunkH = rng.range(1.6, 3.2);
  const blobs: { u: number; v: number; r: number }[] = [{ u: 0, v: trunkH + r * 0.85, r }];
  const extra = rng.int(2, 5);
  for (let i = 0; i < extra; i++) {
    blobs.push({ u: rng.range(-0.7, 0.7) * r, v: trunkH + r * rng.range(0.5, 1.4), r: r * rng.range(0.45, 0.8) });
  }
  return {
    x,
    z,
    trunkH,
    trunkW: rng.range(0.18, 0.4),
    blobs,
    leaf: leafColor(rng, foliage),
    bark: hsl(rng.range(15, 35), rng.range(0.15, 0.35), rng.range(0.15, 0.3)),
    seed: rng.seed(),
  };
}

function makeBush(rng: Rng, x: number, z: number, foliage: Rgb): Bush {
  return { x, z, w: rng.range(1, 3.2), h: rng.range(0.6, 1.5), color: leafColor(rng, foliage), seed: rng.seed() };
}

function makePoles(
  rng: Rng,
  roadHalf: number,
  sidewalkW: number,
  inCross: (z0: number, z1: number) => boolean,
  crossStreets: { z0: number; z1: number }[],
): Pole[] {
  const poles: Pole[] = [];
  const poleColor = rng.pick([hsl(0, 0, 0.35), hsl(0, 0, 0.12), hsl(150, 0.3, 0.2), hsl(0, 0, 0.55)]);
  const lampSpacing = rng.range(14, 30);
  const lampSides = rng.pick([[-1, 1], [1], [-1]] as const);
  for (const side of lampSides) {
    for (let z = WORLD_Z0 + rng.range(0, lampSpacing); z < WORLD_Z1; z += lampSpacing) {
      if (inCross(z - 1, z + 1)) continue;
      poles.push(makePole(rng, 'lamp', side * (roadHalf + 0.45), z, poleColor));
    }
  }
  const signs = rng.int(1, 6);
  for (let i = 0; i < signs; i++) {
    const side = rng.sign();
    const z = rng.range(6, 70);
    if (!inCross(z - 1, z + 1)) poles.push(makePole(rng, 'sign', side * (roadHalf + rng.range(0.35, Math.min(1.2, sidewalkW - 0.3))), z, poleColor));
  }
  for (const c of crossStreets) {
    for (const side of [-1, 1] as const) poles.push(makePole(rng, 'traffic', side * (roadHalf + 0.5), c.z0 - 1.5, poleColor));
  }
  return poles;
}

function makePole(rng: Rng, kind: Pole['kind'], x: number, z: number, color: Rgb): Pole {
  const sign = rng.pick(['circle', 'triangle', 'rect', 'diamond'] as const);
  const signColor =
    sign === 'circle'
      ? rng.chance(0.6)
        ? hsl(0, 0.8, 0.45)
        : hsl(215, 0.8, 0.4)
      : sign === 'diamond'
        ? hsl(48, 0.9, 0.55)
        : sign === 'rect'
          ? rng.pick([hsl(215, 0.8, 0.4), hsl(140, 0.6, 0.3), hsl(0, 0, 0.92)])
          : hsl(0, 0.8, 0.45);
  return {
    kind,
    x,
    z,
    height: kind === 'lamp' ? rng.range(5.5, 9) : kind === 'traffic' ? rng.range(3.2, 4.2) : rng.range(2.4, 3.3),
    width: kind === 'lamp' ? rng.range(0.16, 0.26) : rng.range(0.08, 0.14),
    color,
    armDir: x > 0 ? -1 : 1,
    sign,
    signColor,
    signInner: rng.chance(0.7) ? hsl(0, 0, 0.95) : hsl(0, 0, 0.1),
  };
}

const VEHICLE_SIZES: Record<VehicleKind, { w: [number, number]; l: [number, number]; h: [number, number] }> = {
  car: { w: [1.65, 1.9], l: [3.8, 4.9], h: [1.35, 1.55] },
  van: { w: [1.9, 2.1], l: [4.8, 5.8], h: [1.9, 2.5] },
  truck: { w: [2.3, 2.5], l: [7, 10], h: [3.0, 3.6] },
  bus: { w: [2.45, 2.55], l: [10, 12.5], h: [2.9, 3.2] },
};

function makeVehicle(rng: Rng, x: number, z0: number, vz: number, heading: 1 | -1): Vehicle {
  const kind = rng.pick(['car', 'car', 'car', 'car', 'car', 'van', 'van', 'truck', 'bus'] as const);
  const size = VEHICLE_SIZES[kind];
  return {
    kind,
    x,
    z0,
    vz,
    width: rng.range(...size.w),
    length: rng.range(...size.l),
    height: rng.range(...size.h),
    body: kind === 'bus' && rng.chance(0.6) ? hsl(rng.range(0, 360), 0.7, 0.45) : vehicleColor(rng),
    heading,
    seed: rng.seed(),
  };
}

function makeVehicles(rng: Rng, lanesPerDir: number, laneW: number, parking: number, roadHalf: number, cameraX: number, cameraSpeed: number): Vehicle[] {
  const vehicles: Vehicle[] = [];
  for (let lane = 0; lane < lanesPerDir * 2; lane++) {
    const heading: 1 | -1 = lane < lanesPerDir ? -1 : 1;
    const x = -lanesPerDir * laneW + (lane + 0.5) * laneW;
    const ownLane = Math.abs(x - cameraX) < laneW / 2;
    // The camera's own lane never drives slower than the camera, so it never runs into
    // the car ahead; other lanes may (the camera overtakes them).
    const vz = heading === 1 ? cameraSpeed + (ownLane ? rng.range(0, 0.08) : rng.range(-0.06, 0.08)) : -rng.range(0.15, 0.5);
    const count = rng.int(0, heading === 1 ? 3 : 2);
    let z = ownLane ? rng.range(7, 14) : rng.range(-2, 12);
    for (let i = 0; i < count; i++) {
      vehicles.push(makeVehicle(rng, x + rng.range(-0.25, 0.25), z, vz, heading));
      z += rng.range(14, 35);
    }
  }
  if (parking > 0) {
    for (const side of [-1, 1] as const) {
      let z = rng.range(-5, 8);
      while (z < 90) {
        if (rng.chance(0.7)) {
          const v = makeVehicle(rng, side * (roadHalf - parking / 2), z, 0, side === 1 ? 1 : -1);
          if (v.kind === 'car' || v.kind === 'van') vehicles.push(v);
        }
        z += rng.range(5.5, 9);
      }
    }
  }
  return vehicles;
}

function makePersons(rng: Rng, roadHalf: number, sidewalkW: number, crosswalkZ: number | null): Person[] {
  const persons: Person[] = [];
  // Persons are the smallest class: place enough of them, mostly near the camera, so
  // every still has a few pixels of them to learn from.
  const count = rng.chance(0.2) ? rng.int(12, 24) : rng.int(3, 11);
  for (let i = 0; i < count; i++) {
    const side = rng.sign();
    const walk = rng.range(0.03, 0.07) * rng.sign();
    const z = 3 + 32 * rng.next() ** 1.5;
    persons.push(makePerson(rng, side * (roadHalf + rng.range(0.4, sidewalkW - 0.3)), z, 0, rng.chance(0.15) ? 0 : walk));
  }
  if (crosswalkZ !== null) {
    const crossers = rng.int(1, 5);
    for (let i = 0; i < crossers; i++) {
      persons.push(makePerson(rng, rng.range(-roadHalf, roadHalf), crosswalkZ + rng.range(0.3, 3), rng.range(0.03, 0.06) * rng.sign(), 0));
    }
  }
  return persons;
}

function makePerson(rng: Rng, x0: number, z0: number, vx: number, vz: number): Person {
  const height = rng.chance(0.12) ? rng.range(1.1, 1.45) : rng.range(1.55, 1.95);
  return {
    x0,
    z0,
    vx,
    vz,
    height,
    width: height * rng.range(0.24, 0.3),
    skin: skinColor(rng),
    shirt: clothColor(rng),
    pants: clothColor(rng),
    hair: hsl(rng.range(20, 40), rng.range(0.1, 0.5), rng.range(0.05, 0.5)),
    phase0: rng.range(0, Math.PI * 2),
    bag: rng.chance(0.3) ? clothColor(rng) : null,
  };
}
