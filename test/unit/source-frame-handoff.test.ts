import { describe, expect, it } from 'vitest';
import { SourceFrameHandoffs } from '../../src/shared/source-frame-handoff.js';
import type { SourceFrameDecoder } from '../../src/workers/sink/sink-types.js';
import { DecodedSourceFrames, HandedSourceFrames } from '../../src/workers/sink/source-frames.js';

const FRAME = 4;
const frame = (index: number) => Uint8Array.from({ length: FRAME }, (_, k) => index * 10 + k);
const noFlush = async () => {};

describe('SourceFrameHandoff', () => {
  it('hands each frame to the claiming sink as put, a copy, and drops frames the sink skips', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 16);
    const handoff = handoffs.open('v', FRAME)!;
    expect(handoffs.claim('v')).toBe(handoff);
    const original = frame(0);
    for (let index = 0; index < 4; index++) expect(await handoff.put(index, index === 0 ? original : frame(index), noFlush)).toBe(true);
    original.fill(0);
    expect([...handoff.take(0)!]).toEqual([...frame(0)]);
    expect(handoffs.bytesHeld).toBe(4 * FRAME);
    // A sink resuming at frame 3 never asks for 1 and 2: they are freed.
    expect([...handoff.take(3)!]).toEqual([...frame(3)]);
    expect(handoff.take(2)).toBeUndefined();
  });

  it('gives back frames into reused buffers and frees their bytes', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 8);
    const handoff = handoffs.open('v', FRAME)!;
    handoffs.claim('v');
    await handoff.put(0, frame(0), noFlush);
    const first = handoff.take(0)!;
    handoff.giveBack(first);
    expect(handoffs.bytesHeld).toBe(0);
    await handoff.put(1, frame(1), noFlush);
    const second = handoff.take(1)!;
    expect(second).toBe(first);
    expect([...second]).toEqual([...frame(1)]);
  });

  it('makes the producer wait for room while a sink takes frames, handing its pending frames over first', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 8);
    const handoff = handoffs.open('v', FRAME)!;
    handoffs.claim('v');
    for (let index = 0; index < 8; index++) await handoff.put(index, frame(index), noFlush);
    let flushed = 0;
    let stored = false;
    const ninth = handoff.put(8, frame(8), async () => void flushed++).then((result) => (stored = result));
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushed).toBe(1);
    expect(stored).toBe(false);
    handoff.giveBack(handoff.take(0)!);
    expect(await ninth).toBe(true);
    expect(handoffs.bytesHeld).toBe(8 * FRAME);
  });

  it('is given up, not waited on, when no sink claimed it once the budget is spent', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 8);
    const handoff = handoffs.open('v', FRAME)!;
    for (let index = 0; index < 8; index++) expect(await handoff.put(index, frame(index), noFlush)).toBe(true);
    expect(await handoff.put(8, frame(8), noFlush)).toBe(false);
    expect(handoffs.bytesHeld).toBe(0);
    expect(handoffs.claim('v')).toBeUndefined();
    expect(handoff.take(0)).toBeUndefined();
  });

  it('wakes a waiting producer when its sink stops, and it gives up', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 8);
    const handoff = handoffs.open('v', FRAME)!;
    handoffs.claim('v');
    for (let index = 0; index < 8; index++) await handoff.put(index, frame(index), noFlush);
    const ninth = handoff.put(8, frame(8), noFlush);
    handoff.abandon();
    expect(await ninth).toBe(false);
    expect(handoffs.bytesHeld).toBe(0);
  });

  it('stops a waiting producer with its signal', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 8);
    const handoff = handoffs.open('v', FRAME)!;
    handoffs.claim('v');
    for (let index = 0; index < 8; index++) await handoff.put(index, frame(index), noFlush);
    const controller = new AbortController();
    const ninth = handoff.put(8, frame(8), noFlush, controller.signal);
    controller.abort(new Error('producer shutting down'));
    await expect(ninth).rejects.toThrow('producer shutting down');
  });

  it('opens none for frames too large for the budget, none for a video decoded again, and frees what no sink came for', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 8);
    expect(handoffs.open('big', FRAME * 2)).toBeUndefined();
    const first = handoffs.open('v', FRAME)!;
    await first.put(0, frame(0), noFlush);
    // A decode run again for the same video: the sink may be past frames this run would skip.
    expect(handoffs.open('v', FRAME)).toBeUndefined();
    expect(first.take(0)).toBeUndefined();
    const decoded = handoffs.open('w', FRAME)!;
    await decoded.put(0, frame(0), noFlush);
    decoded.finishDecode();
    expect(handoffs.bytesHeld).toBe(FRAME);
    // Another video opens: 'w' was decoded and no sink of this process claimed it.
    handoffs.open('x', FRAME);
    expect(handoffs.bytesHeld).toBe(0);
    expect(handoffs.claim('w')).toBeUndefined();
    expect(handoffs.claim('x')).toBeDefined();
    expect(handoffs.claim('x')).toBeUndefined();
  });
});

/** A decoder of frames 0…count−1 that records where it was started. */
function fakeDecoder(count: number): SourceFrameDecoder & { opened: number } {
  const decoder = {
    opened: 0,
    async *decodeSourceFrames(): AsyncGenerator<Buffer, number, undefined> {
      decoder.opened++;
      for (let index = 0; index < count; index++) yield Buffer.from(frame(index));
      return count;
    },
  };
  return decoder;
}

describe('HandedSourceFrames', () => {
  const decode = { path: '/dev/null', width: 2, height: 2, fps: 10 };

  it('takes every frame from the handoff and gives each back at the next', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 8);
    const handoff = handoffs.open('v', FRAME)!;
    const decoder = fakeDecoder(4);
    const sources = new HandedSourceFrames(handoffs.claim('v')!, 'rgb24', () => new DecodedSourceFrames(decoder, decode, 'rgb24'));
    for (let index = 0; index < 4; index++) await handoff.put(index, frame(index), noFlush);
    for (let index = 0; index < 4; index++) {
      expect([...(await sources.frame(index))]).toEqual([...frame(index)]);
      expect(handoffs.bytesHeld).toBe((4 - index) * FRAME);
    }
    await sources.close();
    expect(handoffs.bytesHeld).toBe(0);
    expect(decoder.opened).toBe(0);
  });

  it('decodes the file itself from the first frame the handoff lacks, with the same frames', async () => {
    const handoffs = new SourceFrameHandoffs(FRAME * 8);
    const handoff = handoffs.open('v', FRAME)!;
    const decoder = fakeDecoder(6);
    const tookOverAt: number[] = [];
    const sources = new HandedSourceFrames(
      handoffs.claim('v')!,
      'rgb24',
      () => new DecodedSourceFrames(decoder, decode, 'rgb24'),
      (index) => tookOverAt.push(index),
    );
    for (let index = 0; index < 3; index++) await handoff.put(index, frame(index), noFlush);
    const frames: number[][] = [];
    for (let index = 0; index < 6; index++) frames.push([...(await sources.frame(index))]);
    expect(frames).toEqual([0, 1, 2, 3, 4, 5].map((index) => [...frame(index)]));
    expect(tookOverAt).toEqual([3]);
    expect(decoder.opened).toBe(1);
    // The producer finds the handoff given up and stops putting frames.
    expect(await handoff.put(6, frame(6), noFlush)).toBe(false);
    expect(handoffs.bytesHeld).toBe(0);
    await sources.close();
  });
});
