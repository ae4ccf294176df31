import { fromString, type CocoRleString } from '../workers/sink/coco-rle.js';

/**
 * Decoding of the per-class COCO compressed RLEs of one masks.ndjson line back into one
 * class-index mask, the inverse of `encodeClasses` + `toString` (src/workers/sink/coco-rle.ts).
 * Counts are column-major (pycocotools' layout) and alternate runs of 0s and 1s starting with
 * 0s; the mask returned is row-major, one byte per pixel, like every image in streamseg.
 */

/** A class RLE that does not describe an h×w mask, or masks that claim the same pixel. */
export class RleDecodeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'RleDecodeError';
  }
}

/**
 * Sets `value` at every pixel of the runs of 1s of `counts` (column-major) in the row-major
 * h×w `out`. Returns the pixels set. With `unset` (the value of a pixel nobody set yet), a
 * pixel already holding something else is an error: class masks partition the frame.
 */
export function paintRuns(counts: readonly number[], h: number, w: number, out: Uint8Array, value: number, unset?: number): number {
  const total = h * w;
  let position = 0;
  let area = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i]!;
    if (!Number.isInteger(count) || count < 0 || position + count > total) {
      throw new RleDecodeError(`RLE counts exceed ${h}x${w} (count ${i} is ${count} at pixel ${position})`);
    }
    if (i % 2 === 1 && count > 0) {
      // Walk the run down its columns: y, x of the first pixel, then row steps.
      let x = Math.floor(position / h);
      let y = position - x * h;
      let left = count;
      while (left > 0) {
        const rows = Math.min(left, h - y);
        for (let o = y * w + x, end = o + rows * w; o < end; o += w) {
          if (unset !== undefined && out[o] !== unset) {
            throw new RleDecodeError(`pixel (${x}, ${Math.floor(o / w)}) is in two class masks`);
          }
          out[o] = value;
        }
        left -= rows;
        area += rows;
        y = 0;
        x++;
      }
    }
    position += count;
  }
  if (position !== total) throw new RleDecodeError(`RLE counts cover ${position} pixels, ${h}x${w} has ${total}`);
  return area;
}

/** Binary mask (0/1, row-major) of one compressed RLE, as pycocotools' `mask.decode` gives it (transposed to row-major). */
export function decodeRleString(rle: CocoRleString): Uint8Array {
  const [h, w] = rle.size;
  const out = new Uint8Array(h * w);
  paintRuns(fromString(rle.counts), h, w, out, 1);
  return out;
}

/**
 * One class-index mask (row-major h×w) from a frame's class RLEs. `valueOf(name)` gives the
 * byte a class is written as (undefined: the class's pixels get `unknown`); pixels no class
 * claims keep `fill`. Throws RleDecodeError when a mask's size is not h×w, its counts do not
 * cover the frame, or two masks claim one pixel.
 */
export function decodeClassMask(
  masks: Readonly<Record<string, CocoRleString>>,
  h: number,
  w: number,
  valueOf: (name: string) => number | undefined,
  options: { fill?: number; unknown?: number } = {},
): Uint8Array {
  const fill = options.fill ?? 255;
  const unknown = options.unknown ?? fill;
  // Painted into a scratch mask first with a marker no class uses, to detect overlaps.
  const names = Object.keys(masks);
  if (names.length > 255) throw new RleDecodeError(`${names.length} class masks in one frame; at most 255 fit in a byte`);
  const marker = 255;
  const slots = new Uint8Array(h * w).fill(marker);
  names.forEach((name, slot) => {
    const rle = masks[name]!;
    if (!Array.isArray(rle.size) || rle.size[0] !== h || rle.size[1] !== w) {
      throw new RleDecodeError(`class "${name}": RLE size ${JSON.stringify(rle.size)}, the frame is ${h}x${w}`);
    }
    if (typeof rle.counts !== 'string') throw new RleDecodeError(`class "${name}": counts is not a compressed RLE string`);
    let counts: number[];
    try {
      counts = fromString(rle.counts);
    } catch (error) {
      throw new RleDecodeError(`class "${name}": ${(error as Error).message}`);
    }
    try {
      paintRuns(counts, h, w, slots, slot, marker);
    } catch (error) {
      throw new RleDecodeError(`class "${name}": ${(error as Error).message}`);
    }
  });
  const values = names.map((name) => valueOf(name) ?? unknown);
  const out = new Uint8Array(h * w);
  for (let i = 0; i < out.length; i++) {
    const s = slots[i]!;
    out[i] = s === marker ? fill : values[s]!;
  }
  return out;
}
