/** Top-level box types an MP4/MOV file (ISO base media, QuickTime) can start with. */
const LEADING_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot']);

/** True when `head` (at least 8 bytes) starts like an MP4/MOV file. */
export function looksLikeIsoBmff(head: Buffer): boolean {
  return head.length >= 8 && LEADING_BOXES.has(head.toString('latin1', 4, 8));
}

/**
 * Follows the top-level boxes of an MP4/MOV byte stream as it goes by, without keeping it:
 * `push` each chunk, get the types of the boxes whose headers it completed (`ftyp`, `moov`,
 * `mdat`, `moof`…). Only box headers (8 or 16 bytes) are copied; payloads are skipped by size.
 */
export class IsoBmffBoxScanner {
  /** Stream offset of the next top-level box header; Infinity once a box runs to the end. */
  private next = 0;
  /** Stream offset of the first byte of the next chunk. */
  private position = 0;
  private readonly header = Buffer.alloc(16);
  private headerBytes = 0;

  push(chunk: Buffer): string[] {
    const types: string[] = [];
    let i = 0;
    while (i < chunk.length && this.next !== Infinity) {
      const at = this.position + i;
      if (at < this.next) {
        i += Math.min(chunk.length - i, this.next - at);
        continue;
      }
      this.header[this.headerBytes++] = chunk[i++]!;
      if (this.headerBytes === 8) {
        const size = this.header.readUInt32BE(0);
        if (size !== 1) this.endHeader(size, 8, types);
      } else if (this.headerBytes === 16) {
        this.endHeader(Number(this.header.readBigUInt64BE(8)), 16, types);
      }
    }
    this.position += chunk.length;
    return types;
  }

  private endHeader(size: number, headerLength: number, types: string[]): void {
    types.push(this.header.toString('latin1', 4, 8));
    this.headerBytes = 0;
    // size 0: the box runs to the end of the file; a size smaller than its header: not a box stream.
    this.next = size === 0 || size < headerLength ? Infinity : this.next + size;
  }
}
