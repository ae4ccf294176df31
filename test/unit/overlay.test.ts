import { describe, expect, it } from 'vitest';
import { OverlayRepository } from '../../src/workers/sink/overlay.repository.js';

describe('OverlayRepository', () => {
  const overlay = new OverlayRepository(
    [
      [255, 0, 0],
      [0, 0, 255],
    ],
    0.5,
  );
  const width = 3;
  const height = 2;
  const source = () => Buffer.from([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180]);
  const mask = new Uint8Array([0, 1, 0, 1, 1, 0]);

  it('blends each pixel with its class colour: round((src·(255−a) + colour·a) / 255)', async () => {
    const out = await overlay.annotate(source(), mask, width, height);
    const a = Math.round(0.5 * 255);
    const expected = [...source()].map((v, i) => {
      const colour = mask[Math.floor(i / 3)] === 0 ? [255, 0, 0] : [0, 0, 255];
      return Math.round((v * (255 - a) + colour[i % 3]! * a) / 255);
    });
    expect([...out]).toEqual(expected);
  });

  it('writes into the source itself when asked, with the same result as a fresh buffer', async () => {
    const fresh = await overlay.annotate(source(), mask, width, height);
    const inPlace = source();
    const out = await overlay.annotate(inPlace, mask, width, height, inPlace);
    expect(out).toBe(inPlace);
    expect(out.equals(fresh)).toBe(true);
  });

  it('refuses an output buffer of the wrong size', async () => {
    await expect(overlay.annotate(source(), mask, width, height, Buffer.alloc(5))).rejects.toThrow(/output buffer has 5 bytes/);
  });
});
