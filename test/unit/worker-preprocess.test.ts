import { describe, expect, it } from 'vitest';
import { Preprocessor } from '../../src/workers/segmentation/preprocess.js';

const input = { width: 3, height: 2, mean: [0.5, 0.25, 0] as [number, number, number], std: [0.5, 0.25, 2] as [number, number, number] };

describe('Preprocessor', () => {
  it('turns RGB HWC bytes into normalised NCHW planes at the frame slot', () => {
    const p = new Preprocessor(input);
    // 6 pixels; pixel i = (i*50, 255 - i*50, 255)
    const rgb = Uint8Array.from({ length: 18 }, (_, k) => [Math.floor(k / 3) * 50, 255 - Math.floor(k / 3) * 50, 255][k % 3]!);
    const batch = new Float32Array(2 * 18).fill(NaN);
    p.write(rgb, batch, 1);
    expect(batch.subarray(0, 18).every(Number.isNaN)).toBe(true);
    const frame = batch.subarray(18);
    for (let i = 0; i < 6; i++) {
      expect(frame[i]).toBeCloseTo((i * 50) / 255 / 0.5 - 1, 6); // R plane
      expect(frame[6 + i]).toBeCloseTo(((255 - i * 50) / 255 - 0.25) / 0.25, 6); // G plane
      expect(frame[12 + i]).toBeCloseTo(0.5, 6); // B plane: (1 - 0) / 2
    }
    // exactly the formula rounded once to float32
    expect(frame[1]).toBe(Math.fround((50 / 255 - 0.5) / 0.5));
  });

  it('refuses a frame of the wrong size', () => {
    expect(() => new Preprocessor(input).write(new Uint8Array(17), new Float32Array(18), 0)).toThrow(/needs 18/);
  });
});
