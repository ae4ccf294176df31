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
 *
 * One instance encodes frame after frame in the same scratch arrays: the sink encodes every
 * frame of a video, and building counts as growing JS arrays and strings a character at a time
 * allocated ~1 MB per 640x360 frame, the largest source of garbage in `streamseg run` (V8's
 * sampling heap profiler, objects collected included). Not safe to share between calls that
 * interleave; every method is synchronous.
 */
export class ClassRleEncoder {
  /** Per mask value: where its runs of 1s start and end, alternately (column-major positions). */
  private readonly boundaries: Int32Array[] = [];
  private readonly lengths = new Int32Array(256);
  /** The current column's value changes, as (row, value) pairs. */
  private changes = new Int32Array(0);
  private chars = Buffer.allocUnsafeSlow(1024);
  private total = 0;

  /** Each present class's RLE, ascending by mask value. */
  encode(mask: Uint8Array, h: number, w: number, columnKeys?: ArrayLike<number>): Map<number, CocoRle> {
    const result = new Map<number, CocoRle>();
    for (const value of this.collect(mask, h, w, columnKeys)) {
      const counts: number[] = [];
      this.forEachCount(value, (count) => counts.push(count));
      result.set(value, { size: [h, w], counts });
    }
    return result;
  }

  /** Each present class's compressed counts (as `toString` writes them), ascending by mask value. */
  encodeStrings(mask: Uint8Array, h: number, w: number, columnKeys?: ArrayLike<number>): [value: number, counts: string][] {
    const result: [number, string][] = [];
    for (const value of this.collect(mask, h, w, columnKeys)) {
      // A count takes at most 7 characters (5 bits each, 35 > 32 bits and a sign); one more count than boundaries.
      const needed = (this.lengths[value]! + 1) * 7;
      if (this.chars.length < needed) this.chars = Buffer.allocUnsafeSlow(Math.max(needed, 2 * this.chars.length));
      const chars = this.chars;
      let length = 0;
      let twoBack = 0;
      let oneBack = 0;
      let i = 0;
      this.forEachCount(value, (count) => {
        length = writeCount(i > 2 ? count - twoBack : count, chars, length);
        twoBack = oneBack;
        oneBack = count;
        i++;
      });
      result.push([value, chars.toString('latin1', 0, length)]);
    }
    return result;
  }

  /** Fills `boundaries` for `mask`; returns the mask values present, ascending. */
  private collect(mask: Uint8Array, h: number, w: number, columnKeys?: ArrayLike<number>): number[] {
    checkSize(mask, h, w);
    if (columnKeys && columnKeys.length !== w) throw new RangeError(`${columnKeys.length} column keys for a mask ${w} wide`);
    this.lengths.fill(0);
    const total = (this.total = h * w);
    if (total === 0) return [];
    if (this.changes.length < 2 * h) this.changes = new Int32Array(2 * h);
    const changes = this.changes;
    let changeCount = 0;
    let previous = mask[0]!;
    this.push(previous, 0);
    for (let x = 0; x < w; x++) {
      if (!(columnKeys && x > 0 && columnKeys[x] === columnKeys[x - 1])) {
        let value = mask[x]!;
        changes[0] = 0;
        changes[1] = value;
        changeCount = 2;
        for (let y = 1, o = x + w; y < h; y++, o += w) {
          if (mask[o] !== value) {
            value = mask[o]!;
            changes[changeCount++] = y;
            changes[changeCount++] = value;
          }
        }
      }
      const columnStart = x * h;
      for (let i = 0; i < changeCount; i += 2) {
        const value = changes[i + 1]!;
        if (value === previous) continue;
        const position = columnStart + changes[i]!;
        this.push(previous, position);
        this.push(value, position);
        previous = value;
      }
    }
    this.push(previous, total);
    const present: number[] = [];
    for (let value = 0; value < 256; value++) if (this.lengths[value]! > 0) present.push(value);
    return present;
  }

  private push(value: number, position: number): void {
    let list = this.boundaries[value];
    const length = this.lengths[value]!;
    if (!list || length === list.length) {
      const grown = new Int32Array(Math.max(64, 2 * length));
      if (list) grown.set(list);
      this.boundaries[value] = list = grown;
    }
    list[length] = position;
    this.lengths[value] = length + 1;
  }

  /** The counts of class `value` from its boundaries [start0, end0, start1, end1, ...]: 0s first, then 1s, alternately. */
  private forEachCount(value: number, emit: (count: number) => void): void {
    const list = this.boundaries[value]!;
    const length = this.lengths[value]!;
    emit(list[0]!);
    for (let i = 1; i < length; i++) emit(list[i]! - list[i - 1]!);
    if (list[length - 1]! < this.total) emit(this.total - list[length - 1]!);
  }
}

/** RLE of every class present in a class-index mask; see ClassRleEncoder (a one-off encoder). */
export function encodeClasses(mask: Uint8Array, h: number, w: number, columnKeys?: ArrayLike<number>): Map<number, CocoRle> {
  return new ClassRleEncoder().encode(mask, h, w, columnKeys);
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

/** pycocotools' `rleToString`. */
export function toString(counts: readonly number[]): string {
  // 11 characters hold any safe integer (55 bits with the sign).
  const chars = Buffer.allocUnsafe(counts.length * 11);
  let length = 0;
  for (let i = 0; i < counts.length; i++) length = writeCount(i > 2 ? counts[i]! - counts[i - 2]! : counts[i]!, chars, length);
  return chars.toString('latin1', 0, length);
}

/**
 * Writes one (difference of) count as pycocotools' `rleToString` does, 5 bits per character;
 * returns the offset after it. Arithmetic instead of 32-bit shifts so any count is exact.
 */
function writeCount(count: number, chars: Uint8Array, at: number): number {
  let x = count;
  for (;;) {
    let c = x - Math.floor(x / 32) * 32; // x & 0x1f for any sign
    x = Math.floor(x / 32); // arithmetic shift right by 5
    const more = c & 0x10 ? x !== -1 : x !== 0;
    if (more) c |= 0x20;
    chars[at++] = c + 48;
    if (!more) return at;
  }
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
