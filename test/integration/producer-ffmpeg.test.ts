import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FfmpegRepository } from '../../src/producers/ffmpeg.repository.js';
import { LetterboxResizer } from '../../src/producers/letterbox-resizer.js';
import { SceneCutDetector } from '../../src/producers/scene-cut-detector.js';
import { decoderMakesModelInput } from '../../src/shared/media/raw-video-decode.js';
import { planModelInput } from '../../src/shared/model-input-plan.js';
import type { VideoInput } from '../../src/shared/job-schemas.js';
import { makeTestVideo, probeVideo } from '../helpers/media.js';

const run = promisify(execFile);
const ffmpeg = new FfmpegRepository();
let dir: string;
const file = (name: string): VideoInput => ({ kind: 'file', path: path.join(dir, name) });

/** ffmpeg processes reading this test's directory (read-only check for orphans). */
async function ffmpegsOn(name: string): Promise<number> {
  const { stdout } = await run('ps', ['-eo', 'args']).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((line) => line.startsWith('ffmpeg') && line.includes(path.join(dir, name))).length;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-ffmpeg-'));
  const h264 = ['libx264', '-pix_fmt', 'yuv420p'];
  await makeTestVideo(path.join(dir, 'cut.mp4'), { width: 320, height: 240, fps: 10, framesPerScene: [20, 10], video: h264 });
  await makeTestVideo(path.join(dir, 'long.mp4'), { width: 320, height: 240, fps: 25, framesPerScene: [250, 250], video: h264 });
  await makeTestVideo(path.join(dir, 'vfr.mkv'), {
    width: 161,
    height: 99,
    fps: 10,
    framesPerScene: [20, 10],
    video: ['libx264', '-pix_fmt', 'yuv444p'],
    variableFrameRate: true,
  });
  await makeTestVideo(path.join(dir, 'clip.webm'), {
    width: 128,
    height: 96,
    fps: 12,
    framesPerScene: [12, 12],
    video: ['libvpx-vp9', '-deadline', 'realtime'],
    audio: true,
  });
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=duration=1', path.join(dir, 'audio.m4a')]);
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48', '-frames:v', '1', path.join(dir, 'still.png')]);
  await copyFile(path.join(dir, 'still.png'), path.join(dir, 'still.mp4'));
  await writeFile(path.join(dir, 'empty.mp4'), '');
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('FfmpegRepository.probe', () => {
  it('reads an mp4', async () => {
    expect(await ffmpeg.probe(file('cut.mp4'))).toMatchObject({
      width: 320,
      height: 240,
      fps: 10,
      durationMs: 3000,
      frameCountEstimate: 30,
      codec: 'h264',
      hasVideo: true,
    });
  });
  it('reads a webm with audio (no frame count in the header)', async () => {
    const probe = await ffmpeg.probe(file('clip.webm'));
    expect(probe).toMatchObject({ width: 128, height: 96, codec: 'vp9', hasVideo: true });
    expect(probe.frameCountEstimate).toBeGreaterThanOrEqual(23);
    expect(probe.frameCountEstimate).toBeLessThanOrEqual(25);
  });
  it.each([
    ['audio.m4a', 'E_INPUT_NO_VIDEO_STREAM'],
    ['still.mp4', 'E_INPUT_NOT_VIDEO'],
    ['empty.mp4', 'E_INPUT_NOT_VIDEO'],
    ['missing.mp4', 'E_INPUT_NOT_FOUND'],
  ])('refuses %s with %s, naming the file', async (name, code) => {
    const error = await ffmpeg.probe(file(name)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code });
    expect((error as Error).message).toContain(name);
  });
  it('says so when ffprobe is not installed', async () => {
    await expect(new FfmpegRepository({ ffprobePath: 'no-such-ffprobe' }).probe(file('cut.mp4'))).rejects.toMatchObject({
      code: 'E_FFMPEG',
      message: expect.stringMatching(/not found: install ffmpeg/),
    });
  });
});

describe('FfmpegRepository.decodeFrames', () => {
  async function decodeAll(name: string, fps?: number) {
    const probe = await ffmpeg.probe(file(name));
    const frames: { index: number; timestampMs: number; bytes: number }[] = [];
    const cuts: number[] = [];
    const detector = new SceneCutDetector({ threshold: 0.3, minSceneFrames: 4 });
    for await (const f of ffmpeg.decodeFrames(file(name), {
      fps: fps ?? probe.fps,
      width: probe.width,
      height: probe.height,
      streamIndex: probe.streamIndex,
    })) {
      frames.push({ index: f.index, timestampMs: f.timestampMs, bytes: f.data.length });
      if (detector.next({ data: f.data, width: probe.width, height: probe.height })) cuts.push(f.index);
    }
    return { probe, frames, cuts };
  }

  it('yields exact RGB24 frames at source size with constant-rate timestamps', async () => {
    const { frames, cuts } = await decodeAll('cut.mp4');
    expect(frames).toHaveLength(30);
    expect(frames.every((f, i) => f.index === i && f.bytes === 320 * 240 * 3 && Math.abs(f.timestampMs - i * 100) < 1e-9)).toBe(true);
    expect(cuts).toEqual([0, 20]);
  });

  it('turns a variable-frame-rate source into constant rate at its average rate, odd sizes included', async () => {
    const { probe, frames, cuts } = await decodeAll('vfr.mkv');
    const counted = await probeVideo(path.join(dir, 'vfr.mkv'));
    expect(probe.width).toBe(161);
    expect(Math.abs(frames.length - counted.frames)).toBeLessThanOrEqual(1);
    expect(frames.every((f) => f.bytes === 161 * 99 * 3)).toBe(true);
    expect(cuts).toHaveLength(2);
  });

  it('resamples to a requested rate', async () => {
    const { frames } = await decodeAll('cut.mp4', 4);
    expect(frames).toHaveLength(12);
    expect(frames[11]!.timestampMs).toBe(2750);
  });

  // The producer's default path (the sink decodes the source itself): ffmpeg hands out the
  // model input. It must be the input LetterboxResizer makes from the source-size frame, which
  // training stills go through, or the network would be served pixels it was not trained on.
  it.each([
    ['cut.mp4', 'fit, no bars (320x240 → 224x160)', { width: 0, height: 0, fit: { pixels: 224 * 160, stride: 16, maxSide: 448 } }],
    ['cut.mp4', 'letterbox, bars above and below (320x240 → 96x96)', { width: 96, height: 96 }],
    ['vfr.mkv', 'fit, odd source, odd rect (161x99 → 128x80)', { width: 0, height: 0, fit: { pixels: 128 * 80, stride: 16, maxSide: 448 } }],
  ])('hands out %s model input as LetterboxResizer makes it: %s', async (name, _case, spec) => {
    const probe = await ffmpeg.probe(file(name));
    const plan = planModelInput(spec, probe.width, probe.height);
    expect(decoderMakesModelInput(plan, probe.width, probe.height)).toBe(true);
    const options = { fps: probe.fps, width: probe.width, height: probe.height, streamIndex: probe.streamIndex };
    const resizer = new LetterboxResizer(probe.width, probe.height, plan);
    const expected: Buffer[] = [];
    for await (const f of ffmpeg.decodeFrames(file(name), options)) expected.push(await resizer.resize(f.data));
    const got: Buffer[] = [];
    for await (const f of ffmpeg.decodeFrames(file(name), { ...options, modelInput: plan })) got.push(Buffer.from(f.data));

    expect(got).toHaveLength(expected.length);
    let bytes = 0;
    let withinOne = 0;
    let difference = 0;
    let blackOutsideRect = true;
    const { x, y, width, height } = plan.rect;
    got.forEach((frame, i) => {
      expect(frame.length).toBe(plan.width * plan.height * 3);
      for (let p = 0; p < frame.length; p++) {
        bytes++;
        const d = Math.abs(frame[p]! - expected[i]![p]!);
        difference += d;
        if (d <= 1) withinOne++;
        const px = (p / 3) % plan.width;
        const py = Math.floor(p / 3 / plan.width);
        if ((px < x || px >= x + width || py < y || py >= y + height) && frame[p] !== 0) blackOutsideRect = false;
      }
    });
    // Two lanczos implementations round this test pattern's sharp edges differently: 96-99.9% of
    // bytes agree within one level here (99.9% on street video); a one-pixel shift is a mean 7.
    expect(withinOne / bytes).toBeGreaterThan(0.9);
    expect(difference / bytes).toBeLessThan(1);
    expect(blackOutsideRect).toBe(true);
  });

  it('leaves enlarging to LetterboxResizer (ffmpeg places enlarged pixels elsewhere)', () => {
    const fit = { width: 0, height: 0, fit: { pixels: 28672, stride: 16, maxSide: 448, smallSourceScale: 1.4 } };
    expect(decoderMakesModelInput(planModelInput(fit, 160, 160), 160, 160)).toBe(false);
    expect(decoderMakesModelInput(planModelInput(fit, 640, 360), 640, 360)).toBe(true);
    expect(decoderMakesModelInput(planModelInput({ width: 96, height: 96 }, 64, 48), 64, 48)).toBe(false);
  });

  it('kills ffmpeg when the consumer stops early', async () => {
    const probe = await ffmpeg.probe(file('long.mp4'));
    let seen = 0;
    for await (const f of ffmpeg.decodeFrames(file('long.mp4'), { fps: probe.fps, width: probe.width, height: probe.height })) {
      if (f.index === 0) expect(await ffmpegsOn('long.mp4')).toBe(1);
      if (++seen === 3) break;
    }
    expect(await ffmpegsOn('long.mp4')).toBe(0);
  });

  it('kills ffmpeg and throws the reason when aborted', async () => {
    const probe = await ffmpeg.probe(file('long.mp4'));
    const controller = new AbortController();
    const frames = ffmpeg.decodeFrames(file('long.mp4'), { fps: probe.fps, width: probe.width, height: probe.height, signal: controller.signal });
    await frames.next();
    controller.abort(new Error('stop now'));
    await expect(
      (async () => {
        for await (const _ of frames) await new Promise((r) => setTimeout(r, 1));
      })(),
    ).rejects.toThrow('stop now');
    expect(await ffmpegsOn('long.mp4')).toBe(0);
  });

  it('quotes ffmpeg when decoding fails', async () => {
    // A truncated file: the header is fine, the data ends early.
    const whole = await readFile(path.join(dir, 'long.mp4'));
    await writeFile(path.join(dir, 'cut-short.mp4'), whole.subarray(0, Math.floor(whole.length / 3)));
    const error = await (async () => {
      for await (const _ of ffmpeg.decodeFrames(file('cut-short.mp4'), { fps: 25, width: 320, height: 240 })) {
        /* drain */
      }
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_INPUT_DECODE' });
    expect((error as Error).message).toMatch(/cut-short\.mp4: ffmpeg failed after 0 frames: .+/);
  });

  it('blames an ffmpeg without zscale, not the input', async () => {
    // The real ffmpeg, with zscale renamed in its arguments: it fails as a build without libzimg does.
    const withoutZscale = path.join(dir, 'ffmpeg-without-zscale');
    await writeFile(withoutZscale, '#!/bin/sh\nfor a; do shift; set -- "$@" "$(printf %s "$a" | sed s/zscale=/zscale_absent=/g)"; done\nexec ffmpeg "$@"\n', {
      mode: 0o755,
    });
    const probe = await ffmpeg.probe(file('cut.mp4'));
    const plan = planModelInput({ width: 96, height: 96 }, probe.width, probe.height);
    const error = await (async () => {
      const frames = new FfmpegRepository({ ffmpegPath: withoutZscale }).decodeFrames(file('cut.mp4'), {
        fps: probe.fps,
        width: probe.width,
        height: probe.height,
        modelInput: plan,
      });
      for await (const _ of frames) {
        /* drain */
      }
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_FFMPEG' });
    expect((error as Error).message).toBe(
      `${withoutZscale} has no "zscale_absent" filter: streamseg needs an ffmpeg built with libzimg (zscale), which resizes frames and tone-maps HDR; ` +
        `Debian's and Ubuntu's ffmpeg packages have it (apt-get install ffmpeg)`,
    );
  });
});
