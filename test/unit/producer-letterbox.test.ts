import { planModelInput } from '../../src/shared/model-input-plan.js';
import { describe, expect, it } from 'vitest';
import { LetterboxResizer } from '../../src/producers/letterbox-resizer.js';
import { MaskUnletterboxer, computeLetterbox } from '../../src/shared/letterbox.js';

function solid(width: number, height: number, rgb: [number, number, number]): Buffer {
  const buf = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) buf.set(rgb, i * 3);
  return buf;
}

/** Pixels of the output that are not black, as a bounding box. */
function contentBox(data: Buffer, width: number, height: number) {
  let x0 = width,
    y0 = height,
    x1 = -1,
    y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      if (data[p]! + data[p + 1]! + data[p + 2]! > 0) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
  }
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** A fixed-size (letterbox) model input plan, as planModelInput makes for a manifest without `fit`. */
function letterboxPlan(sw: number, sh: number, width: number, height: number) {
  return planModelInput({ width, height }, sw, sh);
}

describe('LetterboxResizer', () => {
  const cases: [number, number, number, number][] = [
    [320, 240, 160, 160], // wide: bars above and below
    [240, 480, 100, 100], // tall: bars left and right
    [333, 187, 128, 128], // odd sizes: rounding must match computeLetterbox
    [100, 30, 64, 48],
    [64, 48, 64, 48], // same size: a copy
    [32, 32, 128, 96], // upscale
  ];
  it.each(cases)('places a %ix%i source exactly on the %ix%i letterbox rect', async (sw, sh, dw, dh) => {
    const resizer = new LetterboxResizer(sw, sh, letterboxPlan(sw, sh, dw, dh));
    const out = await resizer.resize(solid(sw, sh, [250, 200, 150]));
    expect(out.length).toBe(dw * dh * 3);
    expect(resizer.rect).toEqual(computeLetterbox(sw, sh, dw, dh));
    expect(contentBox(out, dw, dh)).toEqual(resizer.rect);
    // inside the rect: the source colour, untouched by the black padding at its edges
    const { x, y, width, height } = resizer.rect;
    for (const [px, py] of [
      [x, y],
      [x + width - 1, y + height - 1],
      [x + (width >> 1), y + (height >> 1)],
    ] as const) {
      const p = (py * dw + px) * 3;
      expect([out[p], out[p + 1], out[p + 2]]).toEqual([250, 200, 150]);
    }
  });

  it('keeps left/right and top/bottom order (no flip) so masks map back', async () => {
    // Left half red, right half green; top rows blue-ish marker.
    const sw = 200,
      sh = 100;
    const src = Buffer.alloc(sw * sh * 3);
    for (let yy = 0; yy < sh; yy++) {
      for (let xx = 0; xx < sw; xx++) src.set(yy < 10 ? [0, 0, 255] : xx < sw / 2 ? [255, 0, 0] : [0, 255, 0], (yy * sw + xx) * 3);
    }
    const resizer = new LetterboxResizer(sw, sh, letterboxPlan(sw, sh, 64, 64));
    const out = await resizer.resize(src);
    const { x, y, width, height } = resizer.rect;
    const at = (px: number, py: number) => Array.from(out.subarray((py * 64 + px) * 3, (py * 64 + px) * 3 + 3));
    expect(at(x + 2, y + height - 2)).toEqual([255, 0, 0]);
    expect(at(x + width - 3, y + height - 2)).toEqual([0, 255, 0]);
    expect(at(x + width / 2, y)).toEqual([0, 0, 255]);
    // A mask that is the input's red channel, mapped back with the sink's unletterboxer,
    // lands red on the source's left half.
    const mask = new Uint8Array(64 * 64);
    for (let i = 0; i < mask.length; i++) mask[i] = out[i * 3]! > 128 ? 1 : 0;
    const back = new MaskUnletterboxer(resizer.rect, 64, sw, sh).apply(mask);
    expect(back[50 * sw + 20]).toBe(1);
    expect(back[50 * sw + 180]).toBe(0);
  });

  it("never returns the caller's buffer (the decoder reuses it)", async () => {
    const src = solid(64, 48, [1, 2, 3]);
    const out = await new LetterboxResizer(64, 48, letterboxPlan(64, 48, 64, 48)).resize(src);
    expect(out).not.toBe(src);
    expect(out.equals(src)).toBe(true);
  });

  it('refuses a frame of the wrong size', async () => {
    await expect(new LetterboxResizer(64, 48, letterboxPlan(64, 48, 32, 32)).resize(Buffer.alloc(10))).rejects.toThrow(/expected 9216/);
  });
});
