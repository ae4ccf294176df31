import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultStack, startFaultStack } from './helpers/fault-stack.js';
import { finalState, indices, readOutputs } from './helpers/pipeline.js';

const FRAMES = 40;
/** Far below the sink's default 64-frame segments: the sink must close shorter ones or the producer would wait forever. */
const HIGH_WATER = 6;

describe('backpressure: frames in Redis stay within the high-water mark', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({ prefix: 'backpressure', video: { frames: FRAMES }, env: { STREAMSEG_HIGH_WATER_FRAMES: String(HIGH_WATER) } });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('counts frames the sink has written but not yet checkpointed, and still finishes the video', async () => {
    const videoId = 'bp-1';
    let most = 0;
    let sources = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, (await stack.data.keys(`ss:{${videoId}}:in:*`)).length);
        sources += (await stack.data.keys(`ss:{${videoId}}:src:*`)).length;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await stack.submit(videoId);
    const state = await finalState(stack.client, videoId);
    sampling = false;
    await sampler;

    expect(state.error).toBeUndefined();
    expect(state.status).toBe('done');
    expect(state.maxFramesInRedis).toBe(HIGH_WATER);
    expect(state.checkpointFrames).toBe(FRAMES);
    const outputs = await readOutputs(stack.outDir(videoId));
    expect(outputs.lines.map((l) => l.index)).toEqual(indices(FRAMES));
    expect(outputs.video.frames).toBe(FRAMES);
    // Seen while it ran: frames were there, never more than the mark; no source pixels, as the
    // sink decoded the file itself (STREAMSEG_SOURCE_FRAMES=sink, the default).
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(HIGH_WATER);
    expect(sources).toBe(0);
  });
});
