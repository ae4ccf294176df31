import type { Camera } from '../camera.js';
import { SKY_DEPTH, type Canvas } from '../canvas.js';
import { C } from '../classes.js';
import { fbm2 } from '../noise.js';
import type { SceneLayout } from '../scene-types.js';
import { smoothstep } from '../color.js';

/** Sky gradient with clouds fixed in direction space, so they pan with the camera. */
export function drawSky(canvas: Canvas, cam: Camera, layout: SceneLayout): void {
  const { skyTop, skyHorizon, cloud, cloudiness } = layout.palette;
  const seed = layout.seed ^ 0x51;
  const ss = canvas.ss;
  // Drawn last: only samples nothing else covered. Rows below the horizon can still
  // show sky through gaps right at the vanishing line.
  const rows = canvas.height;
  const shade = { r: 0, g: 0, b: 0 };
  const shader = (px: number, py: number, s: { r: number; g: number; b: number }): void => {
    const e = Math.max(0, (cam.cy - py) / cam.f);
    const t = Math.pow(Math.min(1, e / 0.7), 0.7);
    let r = skyHorizon[0] + (skyTop[0] - skyHorizon[0]) * t;
    let g = skyHorizon[1] + (skyTop[1] - skyHorizon[1]) * t;
    let b = skyHorizon[2] + (skyTop[2] - skyHorizon[2]) * t;
    if (cloudiness > 0) {
      const az = Math.atan2(cam.dirX(px), cam.dirZ(px));
      const n = fbm2(az * 6, (e * 9) / (0.25 + e), seed);
      const c = smoothstep(1 - cloudiness, 1 - cloudiness * 0.5, n) * 0.9;
      const shadeK = 0.85 + 0.15 * n;
      r += (cloud[0] * shadeK - r) * c;
      g += (cloud[1] * shadeK - g) * c;
      b += (cloud[2] * shadeK - b) * c;
    }
    s.r = r;
    s.g = g;
    s.b = b;
  };
  // The sky has no hard edges, so it is shaded once per output pixel and copied into
  // that pixel's samples: a quarter of the work at 2x supersampling.
  for (let y = 0; y < rows; y += ss) {
    for (let x = 0; x < canvas.width; x += ss) {
      let open = false;
      for (let dy = 0; dy < ss && y + dy < canvas.height; dy++) {
        for (let dx = 0; dx < ss; dx++) if (canvas.covered[(y + dy) * canvas.width + x + dx] === 0) open = true;
      }
      if (!open) continue;
      shader(x + ss / 2, y + ss / 2, shade);
      for (let dy = 0; dy < ss && y + dy < canvas.height; dy++) {
        for (let dx = 0; dx < ss; dx++) {
          const i = (y + dy) * canvas.width + x + dx;
          if (canvas.covered[i] === 1) continue;
          canvas.covered[i] = 1;
          canvas.cls[i] = C.sky;
          canvas.depth[i] = SKY_DEPTH;
          canvas.color[i * 3] = shade.r;
          canvas.color[i * 3 + 1] = shade.g;
          canvas.color[i * 3 + 2] = shade.b;
          canvas.emit[i * 3] = 0;
          canvas.emit[i * 3 + 1] = 0;
          canvas.emit[i * 3 + 2] = 0;
          canvas.snow[i] = 0;
        }
      }
    }
  }
}
