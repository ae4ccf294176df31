import { describe, expect, it } from 'vitest';
import { computeLetterbox } from '../../src/shared/letterbox.js';
import { planModelInput } from '../../src/shared/model-input-plan.js';

const FIT = { width: 224, height: 128, fit: { pixels: 224 * 128, stride: 16, maxSide: 448 } };

describe('planModelInput', () => {
  it.each([
    [320, 180, 224, 128],
    [640, 360, 224, 128],
    [1280, 720, 224, 128],
    [1920, 1080, 224, 128],
    [768, 576, 192, 144],
    [640, 480, 192, 144],
    [360, 640, 128, 224],
    [160, 160, 176, 176],
  ])('fits a %ix%i source into %ix%i: aspect kept at a constant budget, sides on the stride', (sw, sh, w, h) => {
    const plan = planModelInput(FIT, sw, sh);
    expect([plan.width, plan.height]).toEqual([w, h]);
    expect(plan.rect).toEqual({ x: 0, y: 0, width: w, height: h });
    expect(plan.width % 16).toBe(0);
    expect(plan.height % 16).toBe(0);
    // within half a stride of the source's aspect ratio on each side
    expect(Math.abs(plan.width / plan.height - sw / sh) / (sw / sh)).toBeLessThan(0.08);
  });

  it('scales a source under the budget by at least smallSourceScale, and leaves larger ones alone', () => {
    const small = { ...FIT, fit: { ...FIT.fit, smallSourceScale: 1.4 } };
    expect(planModelInput(small, 160, 160)).toMatchObject({ width: 224, height: 224 });
    expect(planModelInput(small, 176, 144)).toMatchObject({ width: 240, height: 208 });
    // far under the budget the budget itself asks for more than the factor
    expect(planModelInput(small, 64, 64)).toMatchObject({ width: 176, height: 176 });
    for (const [sw, sh] of [
      [320, 180],
      [640, 360],
      [768, 576],
      [360, 640],
    ]) {
      expect(planModelInput(small, sw!, sh!)).toEqual(planModelInput(FIT, sw!, sh!));
    }
  });

  it('caps extreme aspect ratios at maxSide and keeps at least two strides', () => {
    const wide = planModelInput(FIT, 4000, 100);
    expect(wide.width).toBe(448);
    expect(wide.height).toBe(32);
  });

  it('letterboxes into the fixed size when the manifest has no fit', () => {
    const plan = planModelInput({ width: 160, height: 160 }, 640, 360);
    expect([plan.width, plan.height]).toEqual([160, 160]);
    expect(plan.rect).toEqual(computeLetterbox(640, 360, 160, 160));
  });

  it('refuses a source without pixels', () => {
    expect(() => planModelInput(FIT, 0, 10)).toThrow(RangeError);
  });
});
