import { describe, expect, it } from 'vitest';
import { ReorderBuffer } from '../../src/workers/sink/reorder-buffer.js';

const drain = <T>(b: ReorderBuffer<T>) => [...b.drain()].map((r) => r.index);

describe('ReorderBuffer', () => {
  it('releases strictly in index order', () => {
    const b = new ReorderBuffer<string>();
    b.push(2, 'c');
    b.push(1, 'b');
    expect(drain(b)).toEqual([]);
    b.push(0, 'a');
    expect([...b.drain()]).toEqual([
      { index: 0, item: 'a' },
      { index: 1, item: 'b' },
      { index: 2, item: 'c' },
    ]);
    expect(b.next).toBe(3);
    expect(b.size).toBe(0);
  });

  it('releases each index once, whatever the duplicates (at-least-once jobs)', () => {
    const b = new ReorderBuffer<number>();
    expect(b.push(1, 10)).toBe(true);
    expect(b.push(1, 11)).toBe(false); // held already: first copy wins
    expect(b.push(0, 0)).toBe(true);
    expect([...b.drain()].map((r) => r.item)).toEqual([0, 10]);
    expect(b.push(0, 99)).toBe(false); // released already
    expect(b.push(1, 99)).toBe(false);
    expect(drain(b)).toEqual([]);
  });

  it('handles any permutation with duplicates and stops at gaps', () => {
    const order = [5, 3, 3, 9, 0, 1, 1, 2, 8, 4, 6, 0, 7];
    const b = new ReorderBuffer<number>();
    const released: number[] = [];
    for (const i of order) {
      b.push(i, i);
      released.push(...drain(b));
    }
    expect(released).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('starts where told, ignores what is before, and reports what it has', () => {
    const b = new ReorderBuffer<string>(10);
    expect(b.push(9, 'old')).toBe(false);
    expect(b.has(9)).toBe(true);
    expect(b.has(11)).toBe(false);
    b.push(11, 'x');
    expect(b.has(11)).toBe(true);
    expect(b.shift()).toBeUndefined();
    b.push(10, 'y');
    expect(b.shift()).toEqual({ index: 10, item: 'y' });
    expect(() => new ReorderBuffer(-1)).toThrow(RangeError);
    expect(() => b.push(1.5, 'z')).toThrow(RangeError);
  });
});
