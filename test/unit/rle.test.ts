import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeLetterbox, MaskUnletterboxer } from '../../src/shared/letterbox.js';
import { ClassRleEncoder, area, compress, decode, decompress, encode, encodeClasses, fromString, toString } from '../../src/workers/sink/coco-rle.js';

/**
 * Expected values are derived by hand from pycocotools' maskApi.c (rleEncode, rleToString):
 * pixels in column-major order, counts starting with a run of 0s, each count (minus
 * counts[i-2] for i > 2) written 5 bits at a time, low bits first: c = x & 0x1f; x >>= 5;
 * more = (c & 0x10) ? x != -1 : x != 0; if more c |= 0x20; char = c + 48.
 * Each hand-derived string below was also confirmed with pycocotools 2.0.11's mask.encode;
 * test/fixtures/rle-pycocotools.json holds more masks it encoded.
 */
const pycocotools = JSON.parse(readFileSync(new URL('../fixtures/rle-pycocotools.json', import.meta.url), 'utf8')) as {
  cases: { h: number; w: number; rows: string[]; counts: string; area: number }[];
};
describe('COCO RLE', () => {
  it('2x2 [[0,1],[1,1]]: column-major 0,1,1,1 → counts [1,3] → "13"', () => {
    const rle = encode(Uint8Array.from([0, 1, 1, 1]), 2, 2);
    expect(rle).toEqual({ size: [2, 2], counts: [1, 3] });
    // 1 → c=1, x=0, more=false → chr(49)='1'; 3 → '3'
    expect(toString(rle.counts)).toBe('13');
    expect(area(rle)).toBe(3);
  });

  it('3x2 [[1,0],[1,0],[0,1]]: starts with a 1, so the first count is 0; fourth count is a negative delta', () => {
    // column 0 = 1,1,0; column 1 = 0,0,1 → 1,1,0,0,0,1 → [0,2,3,1]
    const rle = encode(Uint8Array.from([1, 0, 1, 0, 0, 1]), 3, 2);
    expect(rle.counts).toEqual([0, 2, 3, 1]);
    // i=3: x = 1 - counts[1] = -1 → c = -1 & 0x1f = 31, x >>= 5 = -1, (31 & 0x10) and x == -1 → stop;
    // chr(31 + 48) = 'O'. Whole string: '0' '2' '3' 'O'.
    expect(toString(rle.counts)).toBe('023O');
    expect(fromString('023O')).toEqual([0, 2, 3, 1]);
  });

  it('40 zeros → "X1": two 5-bit groups', () => {
    // 40 = 0b01000_00001... low group 8, x = 1 → more → c = 8|0x20 = 40 → 'X'; then 1 → '1'
    const rle = encode(new Uint8Array(40), 5, 8);
    expect(rle.counts).toEqual([40]);
    expect(toString(rle.counts)).toBe('X1');
    expect(area(rle)).toBe(0);
  });

  it('16 zeros → "`0": a positive value whose top group bit would read as a sign needs a zero group', () => {
    // c = 16, x = 0, (16 & 0x10) so more = x != -1 = true → c = 48 → '`'; then c = 0 → '0'
    expect(toString(encode(new Uint8Array(16), 4, 4).counts)).toBe('`0');
    expect(fromString('`0')).toEqual([16]);
  });

  it('a multi-group negative delta: column of 40 ones, a 0, a 1 → "0X11iN"', () => {
    const mask = new Uint8Array(42).fill(1);
    mask[40] = 0;
    const rle = encode(mask, 42, 1);
    expect(rle.counts).toEqual([0, 40, 1, 1]);
    // i=3: x = 1 - 40 = -39 → c = 25, x = -2, more (x != -1) → c = 57 → 'i';
    //      c = -2 & 0x1f = 30, x = -1, (30 & 0x10) and x == -1 → stop → chr(78) = 'N'
    expect(toString(rle.counts)).toBe('0X11iN');
    expect(fromString('0X11iN')).toEqual([0, 40, 1, 1]);
  });

  it('all ones → [0, h*w]', () => {
    expect(encode(new Uint8Array(6).fill(255), 2, 3).counts).toEqual([0, 6]);
  });

  it('encodeClasses gives every present class its own mask in one pass', () => {
    // 2x3 row-major [[0,0,2],[1,2,2]] → column-major 0,1 | 0,2 | 2,2
    const rles = encodeClasses(Uint8Array.from([0, 0, 2, 1, 2, 2]), 2, 3);
    expect([...rles.keys()]).toEqual([0, 1, 2]);
    expect(rles.get(0)!.counts).toEqual([0, 1, 1, 1, 3]);
    expect(rles.get(1)!.counts).toEqual([1, 1, 4]);
    expect(rles.get(2)!.counts).toEqual([3, 3]);
  });

  it('encodeClasses agrees with encode of each binary mask, and round-trips through the string form', () => {
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (const [h, w] of [
      [1, 1],
      [7, 5],
      [31, 64],
      [120, 3],
    ] as const) {
      // blobs rather than noise, so runs are long and short
      const mask = new Uint8Array(h * w);
      for (let i = 0; i < mask.length; i++) mask[i] = random() < 0.15 ? Math.floor(random() * 5) : (mask[i - 1] ?? 0);
      const rles = encodeClasses(mask, h, w);
      let total = 0;
      for (const [value, rle] of rles) {
        const binary = mask.map((v) => (v === value ? 1 : 0));
        expect(rle).toEqual(encode(binary, h, w));
        expect(decode(rle)).toEqual(binary);
        expect(decompress(compress(rle))).toEqual(rle);
        total += area(rle);
      }
      expect(total).toBe(h * w);
    }
  });

  it('encodeClasses reads repeated columns of an upscaled mask once and gives the same RLEs', () => {
    let seed = 777;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    // A letterboxed 16x16 model mask mapped back onto sources of several shapes, up and down.
    for (const [srcW, srcH] of [
      [64, 36],
      [50, 37],
      [12, 30],
      [16, 16],
      [7, 5],
    ] as const) {
      const rect = computeLetterbox(srcW, srcH, 16, 16);
      const small = new Uint8Array(16 * 16);
      for (let i = 0; i < small.length; i++) small[i] = random() < 0.2 ? Math.floor(random() * 6) : (small[i - 1] ?? 0);
      const unletterbox = new MaskUnletterboxer(rect, 16, srcW, srcH);
      const mask = unletterbox.apply(small);
      expect(encodeClasses(mask, srcH, srcW, unletterbox.columnOffsets)).toEqual(encodeClasses(mask, srcH, srcW));
    }
    // Keys that claim a repeat are trusted: that is the contract, and why only the unletterboxer's are passed.
    const twoColumns = Uint8Array.from([1, 2, 1, 2]); // 2x2: columns [1,1] and [2,2]
    expect(encodeClasses(twoColumns, 2, 2, [0, 0]).get(2)).toBeUndefined();
    expect(() => encodeClasses(twoColumns, 2, 2, [0])).toThrow(/column keys/);
  });

  it('one ClassRleEncoder reused over masks of other sizes and classes gives what a fresh one gives, strings included', () => {
    let seed = 4242;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const encoder = new ClassRleEncoder();
    // Large then small then large again: the scratch grows, and stale lengths or boundaries of the
    // frame before would show up as extra or wrong classes.
    for (const [h, w, classes] of [
      [90, 160, 9],
      [3, 4, 2],
      [1, 1, 1],
      [200, 120, 40],
      [7, 5, 3],
    ] as const) {
      const mask = new Uint8Array(h * w);
      for (let i = 0; i < mask.length; i++) mask[i] = random() < 0.1 ? Math.floor(random() * classes) * 6 : (mask[i - 1] ?? 0);
      const fresh = encodeClasses(mask, h, w);
      expect(encoder.encode(mask, h, w)).toEqual(fresh);
      expect(encoder.encodeStrings(mask, h, w)).toEqual([...fresh].map(([value, rle]) => [value, toString(rle.counts)]));
    }
  });

  it('matches masks encoded by pycocotools itself', () => {
    for (const c of pycocotools.cases) {
      const mask = Uint8Array.from(c.rows.join(''), (ch) => Number(ch));
      const rle = encode(mask, c.h, c.w);
      expect(compress(rle)).toEqual({ size: [c.h, c.w], counts: c.counts });
      expect(area(rle)).toBe(c.area);
      expect(decode(decompress({ size: [c.h, c.w], counts: c.counts }))).toEqual(mask);
      expect(toString(encodeClasses(mask, c.h, c.w).get(1)!.counts)).toBe(c.counts);
    }
  });

  it('large counts survive the string form', () => {
    const counts = [3_000_000, 1, 70_000_000, 2, 5, 123_456_789];
    expect(fromString(toString(counts))).toEqual(counts);
  });

  it('refuses masks of the wrong size and corrupt strings', () => {
    expect(() => encode(new Uint8Array(5), 2, 3)).toThrow(RangeError);
    expect(() => decode({ size: [2, 2], counts: [1, 2] })).toThrow(/cover 3 pixels/);
    expect(() => fromString('X')).toThrow(/truncated/);
  });
});
