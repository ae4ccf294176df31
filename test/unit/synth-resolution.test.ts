import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { renderScene } from '../../src/synth/render.js';

/**
 * Train as you serve: the model sees every 16:9 video at 224x128 whatever its source
 * size (planModelInput), through sharp's fill resize (LetterboxResizer). A still rendered
 * at 320x180 and at 1280x720 must therefore look alike once both are downsized to
 * 224x128: same colour statistics and same fine detail (rain streaks, flakes, grain).
 */
interface Stats {
  mean: number[];
  std: number[];
  /** Mean |dx| (horizontal neighbour difference) over all channels: high-frequency energy. */
  hf: number;
}

async function atModelSize(condition: string, width: number, height: number): Promise<Stats> {
  const frame = renderScene({ seed: 11, condition, intensity: 0.9, t: 3, width, height });
  const data = await sharp(Buffer.from(frame.rgb), { raw: { width, height, channels: 3 } })
    .resize(224, 128, { fit: 'fill' })
    .raw()
    .toBuffer();
  const n = 224 * 128;
  const mean = [0, 0, 0];
  const sq = [0, 0, 0];
  let hf = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = data[i * 3 + c]!;
      mean[c]! += v;
      sq[c]! += v * v;
      if (i % 224 !== 0) hf += Math.abs(v - data[(i - 1) * 3 + c]!);
    }
  }
  const m = mean.map((s) => s / n);
  return { mean: m, std: sq.map((s, c) => Math.sqrt(s / n - m[c]! ** 2)), hf: hf / (3 * 223 * 128) };
}

// Measured (seed 11, intensity 0.9, t 3), 320x180 vs 1280x720 after the resize to 224x128,
// worst channel for mean and std (8-bit levels), hf = mean |dx|:
//   rain:  |Δmean| 0.2, |Δstd| 0.1, hf 4.47 vs 4.55 (ratio 1.02)
//   snow:  |Δmean| 0.1, |Δstd| 0.0, hf 7.37 vs 7.51 (ratio 1.02)
//   night: |Δmean| 0.3, |Δstd| 0.2, hf 8.60 vs 8.07 (ratio 0.94)
//   (clear, for reference, geometry only: |Δmean| 0.4, hf ratio 1.01)
// The old effects (unit = width/160, counts per source pixel, 1-pixel grain) fail each:
//   rain |Δmean| 6.7 (hf 5.84 vs 6.96), snow |Δmean| 33 and |Δstd| 20 (hf 8.20 vs 6.28),
//   night hf 7.87 vs 4.34 (ratio 0.55).
const MEAN_TOL = 1.5;
const STD_TOL = 1.5;
const HF_RATIO = [0.88, 1.12] as const;

describe('resolution invariance after downsizing to the model input', () => {
  for (const condition of ['rain', 'snow', 'night']) {
    it(`${condition}: 320x180 and 1280x720 agree at 224x128`, async () => {
      const small = await atModelSize(condition, 320, 180);
      const large = await atModelSize(condition, 1280, 720);
      const detail = JSON.stringify({ small, large });
      for (let c = 0; c < 3; c++) {
        expect(Math.abs(small.mean[c]! - large.mean[c]!), `mean ${c} ${detail}`).toBeLessThan(MEAN_TOL);
        expect(Math.abs(small.std[c]! - large.std[c]!), `std ${c} ${detail}`).toBeLessThan(STD_TOL);
      }
      const ratio = large.hf / small.hf;
      expect(ratio, `hf ${detail}`).toBeGreaterThan(HF_RATIO[0]);
      expect(ratio, `hf ${detail}`).toBeLessThan(HF_RATIO[1]);
    }, 60_000);
  }
});
