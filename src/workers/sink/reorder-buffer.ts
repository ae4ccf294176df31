/**
 * Puts frame results back in index order. Results arrive out of order (many workers) and
 * more than once (jobs run at least once); each index is released exactly once, strictly
 * in order, starting at `start`. Pure: no I/O, no clock.
 */
export class ReorderBuffer<T> {
  private readonly held = new Map<number, T>();
  private nextIndex: number;

  constructor(start = 0) {
    if (!Number.isInteger(start) || start < 0) throw new RangeError('start must be a non-negative integer');
    this.nextIndex = start;
  }

  /** The index the buffer releases next. */
  get next(): number {
    return this.nextIndex;
  }

  /** Results held, waiting for an earlier index. */
  get size(): number {
    return this.held.size;
  }

  /** Whether `index` is already released or held (so fetching it again is pointless). */
  has(index: number): boolean {
    return index < this.nextIndex || this.held.has(index);
  }

  /** The indices from `next` up to `end` (exclusive) neither released nor held: those worth fetching. */
  missing(end: number): number[] {
    const indices: number[] = [];
    for (let i = this.nextIndex; i < end; i++) if (!this.held.has(i)) indices.push(i);
    return indices;
  }

  /**
   * Adds a result. Returns false (and keeps nothing) for an index already released or
   * already held: the first copy wins, as every copy of a frame's result is equivalent.
   */
  push(index: number, item: T): boolean {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`frame index must be a non-negative integer, got ${index}`);
    if (this.has(index)) return false;
    this.held.set(index, item);
    return true;
  }

  /** Releases the next result if it is here, advancing `next`; undefined otherwise. */
  shift(): { index: number; item: T } | undefined {
    const index = this.nextIndex;
    const item = this.held.get(index);
    if (item === undefined && !this.held.has(index)) return undefined;
    this.held.delete(index);
    this.nextIndex++;
    return { index, item: item as T };
  }

  /** Releases every result that is now contiguous with those released before. */
  *drain(): Generator<{ index: number; item: T }> {
    for (let released = this.shift(); released; released = this.shift()) yield released;
  }
}
