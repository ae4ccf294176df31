import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { assertDecodable, parseRate, readProbe, type FfprobeOutput } from '../../src/producers/probe-validation.js';
import { readRawFrames } from '../../src/shared/media/raw-frame-reader.js';
import { InputError } from '../../src/shared/errors/index.js';

const mp4 = 'mov,mp4,m4a,3gp,3g2,mj2';
const video = (stream: Record<string, unknown>, format: Record<string, unknown> = { format_name: mp4, duration: '2.0' }): FfprobeOutput => ({
  streams: [
    { index: 0, codec_type: 'video', codec_name: 'h264', width: 320, height: 240, avg_frame_rate: '10/1', r_frame_rate: '10/1', nb_frames: '20', ...stream },
  ],
  format,
});

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return (error as InputError).code;
  }
  return undefined;
}

describe('readProbe', () => {
  it('reads size, rate, duration and frame count', () => {
    expect(readProbe(video({}))).toMatchObject({
      width: 320,
      height: 240,
      fps: 10,
      durationMs: 2000,
      frameCountEstimate: 20,
      codec: 'h264',
      hasVideo: true,
      streamIndex: 0,
    });
  });
  it('reads the pixel format and colour tags the sink picks its conversion by', () => {
    expect(readProbe(video({ pix_fmt: 'yuv420p', color_space: 'smpte170m', color_range: 'tv' })).colour).toEqual({
      pixelFormat: 'yuv420p',
      matrix: 'smpte170m',
      range: 'tv',
    });
    expect(readProbe(video({ pix_fmt: 'yuv420p' })).colour).toEqual({ pixelFormat: 'yuv420p' });
    expect(readProbe(video({})).colour).toBeUndefined();
  });
  it('falls back to r_frame_rate when avg_frame_rate is 0/0', () => {
    expect(readProbe(video({ avg_frame_rate: '0/0', r_frame_rate: '30000/1001' })).fps).toBeCloseTo(29.97, 2);
  });
  it('estimates the frame count from duration when the container has none (webm)', () => {
    expect(readProbe(video({ nb_frames: undefined, duration: undefined }, { format_name: 'matroska,webm', duration: '3.0' })).frameCountEstimate).toBe(30);
  });
  it('swaps width and height for a video rotated a quarter turn', () => {
    expect(readProbe(video({ side_data_list: [{ rotation: -90 }] }))).toMatchObject({ width: 240, height: 320 });
    expect(readProbe(video({ tags: { rotate: '180' } }))).toMatchObject({ width: 320, height: 240 });
  });
  it('skips cover art and reports audio-only media as hasVideo false', () => {
    const out: FfprobeOutput = {
      streams: [
        { index: 0, codec_type: 'audio', codec_name: 'mp3' },
        { index: 1, codec_type: 'video', codec_name: 'mjpeg', width: 500, height: 500, disposition: { attached_pic: 1 } },
      ],
      format: { format_name: 'mp3', duration: '60' },
    };
    expect(readProbe(out).hasVideo).toBe(false);
  });
  it('parses rates', () => {
    expect(parseRate('25/1')).toBe(25);
    expect(parseRate('0/0')).toBeNaN();
    expect(parseRate(undefined)).toBeNaN();
  });
});

describe('assertDecodable', () => {
  const file = { isFile: true };
  it('accepts a normal video', () => {
    expect(codeOf(() => assertDecodable(readProbe(video({})), 'a.mp4', file))).toBeUndefined();
  });
  it('refuses still images and text that ffprobe happens to parse', () => {
    expect(codeOf(() => assertDecodable(readProbe(video({ codec_name: 'png' }, { format_name: 'png_pipe' })), 'x.mp4', file))).toBe('E_INPUT_NOT_VIDEO');
    expect(codeOf(() => assertDecodable(readProbe(video({ codec_name: 'ansi' }, { format_name: 'tty' })), 'x.txt', file))).toBe('E_INPUT_NOT_VIDEO');
  });
  it('refuses audio-only media', () => {
    expect(codeOf(() => assertDecodable(readProbe({ streams: [{ index: 0, codec_type: 'audio' }], format: { format_name: mp4 } }), 'a.m4a', file))).toBe(
      'E_INPUT_NO_VIDEO_STREAM',
    );
  });
  it('refuses absurd headers, naming the file and the fix', () => {
    expect(codeOf(() => assertDecodable(readProbe(video({ width: 100_000 })), 'big.mp4', file))).toBe('E_INPUT_DIMENSIONS');
    expect(codeOf(() => assertDecodable(readProbe(video({ avg_frame_rate: '90000/1' })), 'fast.mp4', file))).toBe('E_INPUT_DIMENSIONS');
    expect(() => assertDecodable(readProbe(video({ avg_frame_rate: '0/0', r_frame_rate: '0/0' })), 'norate.mp4', file)).toThrow(/norate\.mp4.*--fps/);
    // with a requested rate the source rate does not matter
    expect(
      codeOf(() => assertDecodable(readProbe(video({ avg_frame_rate: '0/0', r_frame_rate: '0/0' })), 'norate.mp4', { isFile: true, requestedFps: 5 })),
    ).toBeUndefined();
  });
  it('refuses an empty file but not a live stream without a length', () => {
    const empty = readProbe(video({ nb_frames: '0', duration: undefined }, { format_name: mp4 }));
    expect(codeOf(() => assertDecodable(empty, 'empty.mp4', file))).toBe('E_INPUT_EMPTY');
    const live = readProbe(video({ nb_frames: undefined, duration: undefined }, { format_name: 'rtsp' }));
    expect(codeOf(() => assertDecodable(live, 'rtsp://cam/1', { isFile: false }))).toBeUndefined();
  });
});

describe('readRawFrames', () => {
  async function collect(chunks: Buffer[], frameBytes: number, reuseBuffer = false) {
    const frames: Buffer[] = [];
    for await (const frame of readRawFrames(Readable.from(chunks), frameBytes, { reuseBuffer })) frames.push(Buffer.from(frame));
    return frames;
  }
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251));

  it('cuts chunks that straddle frames into exact frames', async () => {
    const all = bytes(60);
    const frames = await collect([all.subarray(0, 7), all.subarray(7, 8), all.subarray(8, 33), all.subarray(33)], 12);
    expect(frames).toHaveLength(5);
    expect(Buffer.concat(frames).equals(all)).toBe(true);
  });
  it('reuses one buffer when asked (each frame valid until the next)', async () => {
    const seen = new Set<Buffer>();
    for await (const frame of readRawFrames(Readable.from([bytes(48)]), 12)) seen.add(frame);
    expect(seen.size).toBe(1);
  });
  it('fails on a truncated last frame', async () => {
    await expect(collect([bytes(30)], 12)).rejects.toMatchObject({ code: 'E_INPUT_DECODE' });
  });
});
