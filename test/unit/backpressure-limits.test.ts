import { describe, expect, it } from 'vitest';
import { allocatedBytes, maxFramesInRedis } from '../../src/producers/backpressure-gate.js';

describe('backpressure limits', () => {
  it('rounds values as jemalloc does: four size classes per power of two past 16 KiB', () => {
    expect(allocatedBytes(1000)).toBe(1000);
    expect(allocatedBytes(224 * 128)).toBe(28 * 1024);
    expect(allocatedBytes(224 * 128 * 3)).toBe(96 * 1024);
    expect(allocatedBytes(640 * 360 * 3)).toBe(768 * 1024);
    expect(allocatedBytes(1280 * 720 * 3)).toBe(3 * 1024 * 1024);
    expect(allocatedBytes(2 * 1024 * 1024)).toBe(2 * 1024 * 1024);
    expect(allocatedBytes(2 * 1024 * 1024 + 1)).toBe(2.5 * 1024 * 1024);
  });

  it('admits the fewer of the frame mark and the frames the byte mark holds, at least one', () => {
    expect(maxFramesInRedis({ highWaterFrames: 128, highWaterBytes: 256 * 2 ** 20, bytesPerFrame: 3_272_704 })).toBe(82);
    expect(maxFramesInRedis({ highWaterFrames: 128, highWaterBytes: 256 * 2 ** 20, bytesPerFrame: 126_976 })).toBe(128);
    expect(maxFramesInRedis({ highWaterFrames: 128, highWaterBytes: 2 ** 20, bytesPerFrame: 25_000_000 })).toBe(1);
  });
});
