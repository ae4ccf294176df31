import { describe, expect, it } from 'vitest';
import { OverlayRepository, bt709Limited } from '../../src/workers/sink/overlay.repository.js';
import { rawFrameBytes, sinkSourceFormat } from '../../src/shared/media/raw-pixel-format.js';

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

  describe('yuv420p', () => {
    // 4x2: luma 8 bytes, then Cb and Cr 2 bytes each (one sample per 2x2 block)
    const yuvWidth = 4;
    const yuvHeight = 2;
    const yuvSource = () => Buffer.from([16, 40, 80, 120, 160, 200, 235, 60, 100, 150, 110, 140]);
    // block 0 (columns 0-1) starts with class 1, block 1 (columns 2-3) with class 0
    const yuvMask = new Uint8Array([1, 0, 0, 1, 0, 1, 1, 0]);
    const a = Math.round(0.5 * 255);
    const blend = (v: number, c: number) => Math.round((v * (255 - a) + c * a) / 255);

    it('tints luma per pixel and chroma per 2x2 block by its top-left pixel, in BT.709 limited range', () => {
      const out = overlay.annotateYuv420p(yuvSource(), yuvMask, yuvWidth, yuvHeight, Buffer.alloc(12));
      const colours = [bt709Limited([255, 0, 0]), bt709Limited([0, 0, 255])];
      const src = yuvSource();
      const luma = [...yuvMask].map((m, p) => blend(src[p]!, colours[m]![0]));
      const cb = [blend(src[8]!, colours[1]![1]), blend(src[9]!, colours[0]![1])];
      const cr = [blend(src[10]!, colours[1]![2]), blend(src[11]!, colours[0]![2])];
      expect([...out]).toEqual([...luma, ...cb, ...cr]);
    });

    it('gives the colour the RGB blend gives, to within one level (a blend commutes with RGB→YUV)', () => {
      const grey: [number, number, number] = [90, 140, 200];
      const [y, u, v] = bt709Limited(grey).map(Math.round) as [number, number, number];
      const flat = Buffer.from([y, y, y, y, y, y, y, y, u, u, v, v]);
      const out = overlay.annotateYuv420p(flat, new Uint8Array(8).fill(1), yuvWidth, yuvHeight, Buffer.alloc(12));
      const rgbBlend = bt709Limited([blend(grey[0], 0), blend(grey[1], 0), blend(grey[2], 255)]);
      expect(Math.abs(out[0]! - rgbBlend[0])).toBeLessThanOrEqual(1.5);
      expect(Math.abs(out[8]! - rgbBlend[1])).toBeLessThanOrEqual(1.5);
      expect(Math.abs(out[10]! - rgbBlend[2])).toBeLessThanOrEqual(1.5);
    });

    it('gives the same bytes on aligned frames of widths in eights (four pixels a word) as on any other', () => {
      const three = new OverlayRepository(
        [
          [255, 0, 0],
          [0, 200, 0],
          [20, 40, 250],
        ],
        0.45,
      );
      const [w, h] = [24, 6];
      const bytes = (w * h * 3) / 2;
      const values = Array.from({ length: bytes }, (_, i) => (i * 89 + (i >> 3)) % 256);
      const classes = Array.from({ length: w * h }, (_, p) => ((p % w) * 7 + Math.floor(p / w) * 3) % 3);
      // Buffers of their own start word-aligned; a view one byte in does not.
      const aligned = (data: number[]) => Buffer.from(Uint8Array.from(data).buffer);
      const shifted = (data: number[]) => Buffer.from([0, ...data]).subarray(1);
      const words = three.annotateYuv420p(aligned(values), aligned(classes), w, h, aligned(new Array<number>(bytes).fill(0)));
      const single = three.annotateYuv420p(shifted(values), shifted(classes), w, h, shifted(new Array<number>(bytes).fill(0)));
      const alpha = Math.round(0.45 * 255);
      const colours = [bt709Limited([255, 0, 0]), bt709Limited([0, 200, 0]), bt709Limited([20, 40, 250])];
      const tint = (v: number, colour: number) => Math.round((v * (255 - alpha) + colour * alpha) / 255);
      const expected = values.map((v, i) => {
        if (i < w * h) return tint(v, colours[classes[i]!]![0]);
        const plane = i < (w * h * 5) / 4 ? 1 : 2;
        const sample = (i - w * h) % ((w * h) / 4);
        const topLeft = 2 * Math.floor(sample / (w / 2)) * w + 2 * (sample % (w / 2));
        return tint(v, colours[classes[topLeft]!]![plane]);
      });
      expect([...words]).toEqual(expected);
      expect([...single]).toEqual(expected);
      // In place, as the sink may ask.
      const inPlace = aligned(values);
      expect([...three.annotateYuv420p(inPlace, aligned(classes), w, h, inPlace)]).toEqual(expected);
    });

    it('refuses odd sizes and frames of the wrong size', () => {
      expect(() => overlay.annotateYuv420p(Buffer.alloc(9), new Uint8Array(6), 3, 2, Buffer.alloc(9))).toThrow(/even size, got 3x2/);
      expect(() => overlay.annotateYuv420p(Buffer.alloc(10), yuvMask, yuvWidth, yuvHeight, Buffer.alloc(12))).toThrow(/source frame has 10 bytes/);
    });

    it('sizes frames and picks the sink format: yuv420p only for even sizes', () => {
      expect(rawFrameBytes(640, 360, 'yuv420p')).toBe(345_600);
      expect(rawFrameBytes(641, 361, 'yuv420p')).toBe(641 * 361 + 2 * 321 * 181);
      expect(rawFrameBytes(640, 360, 'rgb24')).toBe(691_200);
      expect(sinkSourceFormat(640, 360)).toBe('yuv420p');
      expect(sinkSourceFormat(641, 360)).toBe('rgb24');
      expect(sinkSourceFormat(640, 361)).toBe('rgb24');
    });
  });
});
