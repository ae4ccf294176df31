import { describe, expect, it } from 'vitest';
import { MaskUnletterboxer, computeLetterbox } from '../../src/shared/letterbox.js';

describe('computeLetterbox', () => {
  it('centres a wide source with bars above and below', () => {
    expect(computeLetterbox(320, 240, 160, 160)).toEqual({ x: 0, y: 20, width: 160, height: 120 });
  });
  it('centres a tall source with bars left and right', () => {
    expect(computeLetterbox(240, 480, 100, 100)).toEqual({ x: 25, y: 0, width: 50, height: 100 });
  });
  it('fills the input when aspect ratios match', () => {
    expect(computeLetterbox(640, 640, 128, 128)).toEqual({ x: 0, y: 0, width: 128, height: 128 });
  });
});

describe('MaskUnletterboxer', () => {
  it('crops the padding and scales the content back to the source size', () => {
    // 4x4 model mask, content in rows 1..2 (letterbox of an 8x4 source), columns coded 1..4.
    const rect = computeLetterbox(8, 4, 4, 4);
    expect(rect).toEqual({ x: 0, y: 1, width: 4, height: 2 });
    const mask = Uint8Array.from([9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9]);
    const out = new MaskUnletterboxer(rect, 4, 8, 4).apply(mask);
    expect(Array.from(out)).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 5, 5, 6, 6, 7, 7, 8, 8]);
    expect(out).not.toContain(9);
  });
});
