import { Camera, type CameraPose } from './camera.js';
import { Canvas } from './canvas.js';
import { drawBuildings, drawSkyline } from './draw/buildings.js';
import { drawGround } from './draw/ground.js';
import { drawPerson, personPosition } from './draw/persons.js';
import { drawPole } from './draw/poles.js';
import { drawSky } from './draw/sky.js';
import { drawVehicle, vehicleZ } from './draw/vehicles.js';
import { drawBush, drawTree } from './draw/vegetation.js';
import { downsample, type FrameBuffers } from './frame-buffers.js';
import type { SceneLayout } from './scene-types.js';

/** Camera pose at frame t: forward motion, lateral drift, slow pan with sway, zoom. */
export function cameraPose(layout: SceneLayout, t: number): CameraPose {
  const m = layout.camera;
  return {
    x: m.x0 + m.driftX * t,
    height: m.height,
    z: m.speed * t,
    yaw: m.yaw0 + m.yawRate * t + m.swayAmp * Math.sin((2 * Math.PI * t) / m.swayPeriod),
    focal: m.focal0 * (1 + m.zoomRate * t),
    horizon: m.horizon,
    center: m.center,
  };
}

/**
 * Rasterises the scene's geometry at frame t into output-resolution buffers, front
 * to back: standing objects near to far (they never intersect each other), then
 * buildings, skyline, ground and finally sky into whatever is left uncovered.
 */
export function renderGeometry(layout: SceneLayout, t: number, width: number, height: number, ss: number): FrameBuffers {
  const canvas = Canvas.reuse(width, height, ss);
  const cam = new Camera(cameraPose(layout, t), canvas.width, canvas.height);
  const items: { depth: number; draw: () => void }[] = [];
  const far = 160;
  const add = (X: number, Z: number, draw: () => void): void => {
    const depth = cam.camZ(X, Z);
    if (depth > -15 && depth < far) items.push({ depth, draw });
  };
  for (const tree of layout.trees) add(tree.x, tree.z, () => drawTree(canvas, cam, tree));
  for (const bush of layout.bushes) add(bush.x, bush.z, () => drawBush(canvas, cam, bush));
  for (const pole of layout.poles) add(pole.x, pole.z, () => drawPole(canvas, cam, pole));
  for (const v of layout.vehicles) {
    const z0 = vehicleZ(v, t);
    // A vehicle's nearest visible point decides its order (its far end may be much farther).
    const nearZ = cam.z > z0 ? Math.min(cam.z + 0.5, z0 + v.length) : z0;
    add(v.x, nearZ, () => drawVehicle(canvas, cam, v, t));
  }
  for (const p of layout.persons) {
    const { x, z } = personPosition(p, t);
    add(x, z, () => drawPerson(canvas, cam, p, t));
  }
  items.sort((a, b) => a.depth - b.depth);
  for (const item of items) item.draw();
  drawBuildings(canvas, cam, layout);
  drawSkyline(canvas, cam, layout);
  drawGround(canvas, cam, layout);
  drawSky(canvas, cam, layout);
  return downsample(canvas);
}
