import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import type { FrameResult } from '../../src/shared/frame-store.js';
import type { VideoState } from '../../src/shared/video-state.js';
import { maskLine } from '../../src/workers/sink/mask-writer.js';
import { SceneTracker, buildReport } from '../../src/workers/sink/report-builder.js';
import { encoderArgs } from '../../src/workers/sink/video-encoder.repository.js';
import { isBt601Yuv420p, rawDecodeArgs, type HdrSignal, type SourceColour } from '../../src/shared/media/raw-video-decode.js';

const record = (index: number, scene: number, adapters: FrameResult['adapters'] = []): FrameResult => ({
  index,
  timestampMs: index * 40,
  scene,
  adapters,
  cacheHit: adapters.length ? true : null,
  inferenceMs: 2,
  workerId: 'w',
});

describe('report', () => {
  it('follows scenes from the records written, end exclusive', () => {
    const tracker = new SceneTracker();
    const fog = [{ name: 'fog', weight: 1 }];
    [record(0, 0), record(1, 0), record(2, 1, fog), record(3, 1, fog), record(4, 1, fog)].forEach((r) => tracker.add(r));
    expect(tracker.list).toEqual([
      { index: 0, startFrame: 0, endFrame: 2, frames: 2, adapters: [] },
      { index: 1, startFrame: 2, endFrame: 5, frames: 3, adapters: fog },
    ]);
  });

  it('builds report.json from the video state', () => {
    const state: VideoState = {
      videoId: 'v1',
      status: 'decoded',
      decodedFrames: 10,
      totalFrames: 10,
      segmentedFrames: 10,
      sinkFrames: 10,
      checkpointFrames: 10,
      sourceWidth: 640,
      sourceHeight: 360,
      fps: 10,
      sourceFps: 25,
      codec: 'h264',
      submittedAt: 1000,
      startedAt: 1500,
      warnings: ['audio dropped'],
      stageMs: { decode: 120.04, segment: 300, sink: 80, decodeBackpressure: 5 },
    };
    const report = buildReport({ state, frames: 10, scenes: [], finishedAt: 3000, warnings: ['late'] });
    expect(report).toEqual({
      videoId: 'v1',
      source: { width: 640, height: 360, fps: 25, codec: 'h264' },
      output: { fps: 10 },
      frames: 10,
      scenes: [],
      timings: { wallMs: 2000, stageMs: { decode: 120, segment: 300, sink: 80, decodeBackpressure: 5 }, framesPerSecond: 5 },
      warnings: ['audio dropped', 'late'],
    });
  });
});

describe('masks.ndjson line', () => {
  it('names the classes present, with compressed RLE at the given size', () => {
    // 2x2 [[0,1],[1,1]] → class 0: column-major 1,0,0,0 → [0,1,3] → "013"; class 1: [1,3] → "13"
    const line = maskLine(record(7, 2), Uint8Array.from([0, 1, 1, 1]), 2, 2, ['sky', 'road', 'pole']);
    expect(line).toEqual({
      index: 7,
      timestampMs: 280,
      scene: 2,
      size: [2, 2],
      adapters: [],
      cacheHit: null,
      masks: { sky: { size: [2, 2], counts: '013' }, road: { size: [2, 2], counts: '13' } },
    });
  });
});

describe('encoder arguments', () => {
  it('always writes BT.709 yuv420p, padding an odd size by one pixel', () => {
    const even = encoderArgs({ width: 640, height: 360, fps: 25 }, 'out.mp4.partial');
    expect(even).toEqual(expect.arrayContaining(['-c:v', 'libx264', '-preset', 'superfast', '-crf', '20', '+faststart', '-colorspace', 'bt709']));
    expect(even[even.indexOf('-vf') + 1]).toBe('scale=out_color_matrix=bt709:out_range=tv,format=yuv420p');
    expect(even.slice(-3)).toEqual(['-f', 'mp4', 'out.mp4.partial']);
    const odd = encoderArgs({ width: 33, height: 20, fps: 25 }, 'x');
    expect(odd[odd.indexOf('-vf') + 1]).toMatch(/^pad=34:20:0:0,fillborders=right=1:bottom=0:mode=smear,.*format=yuv420p$/);
    expect(odd).not.toContain('yuv444p');
  });

  it('takes yuv420p input tagged BT.709 limited range, and the sink decode makes its frames so', () => {
    const args = encoderArgs({ width: 640, height: 360, fps: 25, pixelFormat: 'yuv420p' }, 'x');
    const input = args.slice(0, args.indexOf('-i'));
    expect(input).toEqual(expect.arrayContaining(['-pix_fmt', 'yuv420p', '-colorspace', 'bt709', '-color_range', 'tv']));
    expect(encoderArgs({ width: 640, height: 360, fps: 25 }, 'x').slice(0, 12)).toContain('rgb24');
    const decode = rawDecodeArgs({ locator: 'file:/in.mp4', protocols: 'file', width: 640, height: 360, fps: 25, pixelFormat: 'yuv420p' });
    expect(decode[decode.indexOf('-pix_fmt') + 1]).toBe('yuv420p');
    expect(decode[decode.indexOf('-vf') + 1]).toContain('fps=25,scale=640:360:out_color_matrix=bt709:out_range=tv');
    const rgb = rawDecodeArgs({ locator: 'file:/in.mp4', protocols: 'file', width: 640, height: 360, fps: 25 });
    expect(rgb[rgb.indexOf('-pix_fmt') + 1]).toBe('rgb24');
    expect(rgb[rgb.indexOf('-vf') + 1]).toContain('fps=25,scale=640:360');
  });

  it('converts a BT.601 or untagged 8-bit 4:2:0 stream with the colorspace filter, anything else with swscale', () => {
    const filters = (colour?: SourceColour, hdr?: HdrSignal) => {
      const args = rawDecodeArgs({ locator: 'file:/in.mp4', protocols: 'file', width: 640, height: 360, fps: 25, pixelFormat: 'yuv420p', colour, hdr });
      return args[args.indexOf('-vf') + 1]!;
    };
    const matrixOnly = 'fps=25,scale=640:360,colorspace=ispace=smpte170m:iprimaries=bt709:itrc=bt709:irange=tv:all=bt709:range=tv:fast=1:format=yuv420p';
    for (const colour of [
      { pixelFormat: 'yuv420p' },
      { pixelFormat: 'yuv420p', matrix: 'smpte170m', range: 'tv' },
      { pixelFormat: 'yuv420p', matrix: 'bt470bg', range: 'unknown' },
    ]) {
      expect(isBt601Yuv420p(colour)).toBe(true);
      expect(filters(colour)).toContain(matrixOnly);
    }
    for (const colour of [
      undefined,
      { pixelFormat: 'yuvj420p' },
      { pixelFormat: 'yuv420p', range: 'pc' },
      { pixelFormat: 'yuv420p', matrix: 'bt709' },
      { pixelFormat: 'yuv420p', matrix: 'bt2020nc' },
      { pixelFormat: 'yuv420p10le' },
      { pixelFormat: 'yuv444p' },
    ]) {
      expect(isBt601Yuv420p(colour)).toBe(false);
      expect(filters(colour)).toContain('fps=25,scale=640:360:out_color_matrix=bt709:out_range=tv');
    }
    // HDR is tone-mapped to RGB first: swscale makes the yuv420p from there.
    const hdr: HdrSignal = { transfer: 'smpte2084', primaries: 'bt2020', matrix: 'bt2020nc', range: 'tv' };
    expect(filters({ pixelFormat: 'yuv420p' }, hdr)).toContain('tonemap=hable');
    expect(filters({ pixelFormat: 'yuv420p' }, hdr)).not.toContain('colorspace=');
  });

  it("with a source output, splits one decode into two streams of one rawvideo output: the sink decode's frame, then the model input", () => {
    const plan = { width: 224, height: 128, rect: { x: 0, y: 0, width: 224, height: 128 } };
    const common = { locator: 'file:/in.mp4', protocols: 'file', width: 640, height: 360, fps: 25, colour: { pixelFormat: 'yuv420p' } };
    const args = rawDecodeArgs({ ...common, modelInput: plan, sourceOutput: { pixelFormat: 'yuv420p' } });
    const sink = rawDecodeArgs({ ...common, pixelFormat: 'yuv420p' });
    const producer = rawDecodeArgs({ ...common, modelInput: plan });
    const [shared, branches] = [
      args[args.indexOf('-filter_complex') + 1]!.split(',split[main][source];')[0]!,
      args[args.indexOf('-filter_complex') + 1]!.split(';'),
    ];
    // Each branch is exactly the chain of the decode it replaces, after the same deinterlace and fps.
    expect(`${shared.replace('[0:v:0]', '')},${branches[1]!.replace(/^\[main\]|\[mainOut\]$/g, '')}`).toBe(producer[producer.indexOf('-vf') + 1]);
    expect(`${shared.replace('[0:v:0]', '')},${branches[2]!.replace(/^\[source\]|\[sourceOut\]$/g, '')}`).toBe(sink[sink.indexOf('-vf') + 1]);
    expect(args.slice(args.indexOf('-filter_complex') + 2)).toEqual([
      '-map',
      '[sourceOut]',
      '-map',
      '[mainOut]',
      '-fps_mode',
      'passthrough',
      '-c:v',
      'rawvideo',
      '-pix_fmt:v:0',
      'yuv420p',
      '-pix_fmt:v:1',
      'rgb24',
      '-f',
      'rawvideo',
      'pipe:1',
    ]);
  });

  it('passes the configured preset to x264', () => {
    const args = encoderArgs({ width: 64, height: 48, fps: 25, preset: 'medium' }, 'x');
    expect(args[args.indexOf('-preset') + 1]).toBe('medium');
    expect(loadConfig({}, { STREAMSEG_ENCODER_PRESET: 'medium' }).encoderPreset).toBe('medium');
    expect(() => loadConfig({}, { STREAMSEG_ENCODER_PRESET: 'warp' })).toThrow(/STREAMSEG_ENCODER_PRESET="warp"/);
  });
});
