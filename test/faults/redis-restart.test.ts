import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultStack, startFaultStack } from './helpers/fault-stack.js';
import { finalState, indices, maskContent, readOutputs, waitUntil } from './helpers/pipeline.js';

const FRAMES = 80;

describe('redis-server restarted mid-video (AOF on, appendfsync everysec)', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({
      prefix: 'redis',
      redis: { appendOnly: true },
      video: { frames: FRAMES },
      env: { STREAMSEG_SINK_SEGMENT_FRAMES: '16', STREAMSEG_HIGH_WATER_FRAMES: '24' },
    });
    // The data client sees the restart too: its reconnection errors are expected.
    stack.data.on('error', () => undefined);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('every process reconnects and the video completes with nothing lost', async () => {
    await stack.submit('before');
    expect((await finalState(stack.client, 'before')).status).toBe('done');
    const reference = await readOutputs(stack.outDir('before'));

    await stack.submit('across');
    await waitUntil(
      'the sink to be mid-video',
      async () => {
        const state = await stack.client.states.get('across');
        return state && state.sinkFrames >= 16 && state.sinkFrames < FRAMES ? state : undefined;
      },
      60_000,
      5,
    );
    await stack.redis.restart();

    const state = await finalState(stack.client, 'across');
    expect(state.error).toBeUndefined();
    expect(state.status).toBe('done');
    const outputs = await readOutputs(stack.outDir('across'));
    expect(outputs.lines.map((l) => l.index)).toEqual(indices(FRAMES));
    expect(maskContent(outputs.lines)).toEqual(maskContent(reference.lines));
    expect(outputs.video.frames).toBe(FRAMES);
    const entries = await stack.data.xrange('ss:{across}:frames', '-', '+');
    expect(entries.map(([, f]) => (JSON.parse(f[1]!) as { index: number }).index)).toEqual(indices(FRAMES));

    // Every role is still up and connected: a video submitted after the restart goes through.
    expect(stack.roles.every((r) => r.child.exitCode === null)).toBe(true);
    await stack.submit('after');
    expect((await finalState(stack.client, 'after')).status).toBe('done');
    expect((await readOutputs(stack.outDir('after'))).lines).toHaveLength(FRAMES);
  });
});
