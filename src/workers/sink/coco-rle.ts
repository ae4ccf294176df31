/**
 * COCO run-length encoding, byte-compatible with pycocotools (maskApi.c):
 * - pixels are visited in column-major (Fortran) order: down each column, then right;
 * - `counts` alternate runs of 0s and 1s and always start with a (possibly empty) run of 0s;
 * - the compressed string packs each count in 5-bit groups, least significant first, as
 *   chars 48 + group, 0x20 marking "more groups follow" and 0x10 of the last group being the
 *   sign; from the fourth count on (i > 2) the difference to counts[i-2] is stored instead.
 * Masks here are row-major (how every image in streamseg is laid out), so encode/decode
 * transpose on the fly.
 */
export interface CocoRle {
  /** [height, width], as pycocotools writes it. */
  size: [number, number];
  counts: number[];
}

/** Compressed form, as stored in masks.ndjson and returned by pycocotools' `mask.encode`. */
export interface CocoRleString {
  size: [number, number];
  counts: string;
}

/** RLE of a binary mask (any non-zero byte is 1), row-major h×w. */
export function encode(mask: Uint8Array, h: number, w: number): CocoRle {
  checkSize(mask, h, w);
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let o = x; o < x + h * w; o += w) {
      const bit = mask[o]! !== 0 ? 1 : 0;
      if (bit !== current) {
        counts.push(run);
        run = 0;
        current = bit;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [h, w], counts };
}

/**
 * RLE of every class present in a class-index mask (row-major h×w, one byte per pixel), in
 * one column-major pass. A change of value from a to b ends a run of 1s for class a and
 * starts one for class b, so each class only records its own boundaries.
 *
 * `columnKeys` (optional, length w): `columnKeys[x] === columnKeys[x − 1]` promises that column
 * x equals column x − 1, so its value changes are taken from the column before instead of read
 * again. An upscaled mask repeats each model column over several output columns
 * (MaskUnletterboxer.columnOffsets): at 1080p from a 160-pixel mask, 1 column in 12 is read.
 */
export function encodeClasses(mask: Uint8Array, h: number, w: number, columnKeys?: ArrayLike<number>): Map<number, CocoRle> {
  checkSize(mask, h, w);
  if (columnKeys && columnKeys.length !== w) throw new RangeError(`${columnKeys.length} column keys for a mask ${w} wide`);
  const boundaries = new Map<number, number[]>();
  const at = (value: number) => {
    let list = boundaries.get(value);
    if (!list) boundaries.set(value, (list = []));
    return list;
  };
  const total = h * w;
  if (total === 0) return new Map();
  let previous = mask[0]!;
  at(previous).push(0);
  // The current column's value changes as (row, value) pairs, starting with row 0.
  const changes: number[] = [];
  for (let x = 0; x < w; x++) {
    if (!(columnKeys && x > 0 && columnKeys[x] === columnKeys[x - 1])) {
      changes.length = 0;
      let value = mask[x]!;
      changes.push(0, value);
      for (let y = 1, o = x + w; y < h; y++, o += w) {
        if (mask[o] !== value) {
          value = mask[o]!;
          changes.push(y, value);
        }
      }
    }
    const columnStart = x * h;
    for (let i = 0; i < changes.length; i += 2) {
      const value = changes[i + 1]!;
      if (value === previous) continue;
      const position = columnStart + changes[i]!;
      at(previous).push(position);
      at(value).push(position);
      previous = value;
    }
  }
  at(previous).push(total);
  const result = new Map<number, CocoRle>();
  for (const [value, list] of [...boundaries].sort((a, b) => a[0] - b[0])) {
    // list = [start0, end0, start1, end1, ...] of this class's runs of 1s.
    const counts = [list[0]!];
    for (let i = 1; i < list.length; i++) counts.push(list[i]! - list[i - 1]!);
    if (list[list.length - 1]! < total) counts.push(total - list[list.length - 1]!);
    result.set(value, { size: [h, w], counts });
  }
  return result;
}

/** Binary mask (0/1 bytes, row-major) of an RLE. Throws when the counts do not cover h×w. */
export function decode(rle: CocoRle): Uint8Array {
  const [h, w] = rle.size;
  const mask = new Uint8Array(h * w);
  let position = 0;
  rle.counts.forEach((count, i) => {
    if (count < 0 || position + count > h * w) throw new RangeError(`RLE counts exceed ${h}x${w}`);
    if (i % 2 === 1) {
      for (let p = position; p < position + count; p++) mask[(p % h) * w + Math.floor(p / h)] = 1;
    }
    position += count;
  });
  if (position !== h * w) throw new RangeError(`RLE counts cover ${position} pixels, ${h}x${w} has ${h * w}`);
  return mask;
}

/** pycocotools' `rleToString`. Arithmetic instead of 32-bit shifts so any count is exact. */
export function toString(counts: readonly number[]): string {
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i]!;
    if (i > 2) x -= counts[i - 2]!;
    let more = true;
    while (more) {
      let c = x - Math.floor(x / 32) * 32; // x & 0x1f for any sign
      x = Math.floor(x / 32); // arithmetic shift right by 5
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** pycocotools' `rleFrString`. */
export function fromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new RangeError(`truncated RLE string at ${p}`);
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new RangeError(`invalid RLE character ${JSON.stringify(s[p])} at ${p}`);
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2]!;
    counts.push(x);
  }
  return counts;
}

export function compress(rle: CocoRle): CocoRleString {
  return { size: rle.size, counts: toString(rle.counts) };
}

export function decompress(rle: CocoRleString): CocoRle {
  return { size: rle.size, counts: fromString(rle.counts) };
}

/** Pixels set: the sum of the runs of 1s (odd positions). */
export function area(rle: CocoRle): number {
  let sum = 0;
  for (let i = 1; i < rle.counts.length; i += 2) sum += rle.counts[i]!;
  return sum;
}

function checkSize(mask: Uint8Array, h: number, w: number): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0 || mask.length !== h * w) {
    throw new RangeError(`mask has ${mask.length} bytes, ${h}x${w} needs ${h * w}`);
  }
}
