import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SceneCutDetector } from '../../src/producers/scene-cut-detector.js';
import { CONDITIONS, parseCondition } from '../../src/synth/conditions.js';
import { renderVideo, type ScenesFile, type VideoResult } from '../../src/synth/video.js';

const FRAMES = 50;
const W = 96;
const H = 64;
let dir = '';
let out = '';
let result: VideoResult;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'synth-video-'));
  out = path.join(dir, 'clip.mp4');
  const conditions = CONDITIONS.map((c) => parseCondition(c)!);
  result = await renderVideo({ out, frames: FRAMES, scenes: 4, width: W, height: H, fps: 24, seed: 3, conditions });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('renderVideo', () => {
  it('writes an H.264 yuv420p MP4 with exactly N frames at the given fps', () => {
    const probe = JSON.parse(
      execFileSync('ffprobe', [
        '-v',
        'error',
        '-count_frames',
        '-select_streams',
        'v:0',
        '-show_entries',
        'stream=codec_name,pix_fmt,width,height,nb_read_frames,r_frame_rate',
        '-of',
        'json',
        out,
      ]).toString(),
    ) as { streams: Record<string, string | number>[] };
    expect(probe.streams[0]).toMatchObject({
      codec_name: 'h264',
      pix_fmt: 'yuv420p',
      width: W,
      height: H,
      nb_read_frames: String(FRAMES),
      r_frame_rate: '24/1',
    });
  });

  it('writes one greyscale class-index mask per frame', async () => {
    const names = (await readdir(path.join(dir, 'clip.masks'))).sort();
    expect(names).toHaveLength(FRAMES);
    expect(names[0]).toBe('000000.png');
    expect(names[FRAMES - 1]).toBe(`${String(FRAMES - 1).padStart(6, '0')}.png`);
    const meta = await sharp(path.join(dir, 'clip.masks', names[7]!)).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([W, H, 1]);
  });

  it('describes scenes that cover [0, N) without gaps, each >= 8 frames, conditions changing at each cut', async () => {
    const doc = JSON.parse(await readFile(path.join(dir, 'clip.scenes.json'), 'utf8')) as ScenesFile;
    expect(doc).toMatchObject({ seed: 3, width: W, height: H, fps: 24, frames: FRAMES });
    expect(doc.classes).toEqual(['sky', 'road', 'sidewalk', 'building', 'vegetation', 'vehicle', 'person', 'pole']);
    expect(doc.scenes).toHaveLength(4);
    let expectStart = 0;
    for (const [i, s] of doc.scenes.entries()) {
      expect(s.index).toBe(i);
      expect(s.startFrame).toBe(expectStart);
      expect(s.endFrame - s.startFrame).toBeGreaterThanOrEqual(8);
      expect(s.components.join('+')).toBe(s.condition);
      if (i > 0) expect(s.condition).not.toBe(doc.scenes[i - 1]!.condition);
      expectStart = s.endFrame;
    }
    expect(expectStart).toBe(FRAMES);
  });

  it('makes every cut, and only the cuts, visible to a histogram scene-cut detector', () => {
    const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', out, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']);
    const frameBytes = W * H * 3;
    expect(raw.length).toBe(frameBytes * FRAMES);
    const detector = new SceneCutDetector({ threshold: 0.3, minSceneFrames: 4 });
    const cuts: number[] = [];
    for (let i = 0; i < FRAMES; i++) {
      if (detector.next({ data: raw.subarray(i * frameBytes, (i + 1) * frameBytes), width: W, height: H }) && i > 0) cuts.push(i);
    }
    expect(cuts).toEqual(result.scenes.slice(1).map((s) => s.startFrame));
    for (const d of result.cutDistances) expect(d).toBeGreaterThan(0.3);
  });
});
