import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelPackage, type ModelPackage } from '../../src/shared/model-manifest.js';
import { centroidFromMedia } from '../../src/workers/adapters/centroid-from-media.js';
import { writeFixturePackage } from '../fixtures/adapters/adapter-fixtures.js';

describe('centroid from media', () => {
  let dir: string;
  let pkg: ModelPackage;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-centroid-'));
    await writeFixturePackage(path.join(dir, 'pkg'), { embeddingSize: 8, adapters: [], embedder: true });
    pkg = await loadModelPackage(path.join(dir, 'pkg'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('averages the embeddings of video frames and of images of the same look alike', async () => {
    const video = path.join(dir, 'blue.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=0x2040c0:size=64x36:rate=10:duration=2', '-pix_fmt', 'yuv420p', video]);
    const image = path.join(dir, 'blue.png');
    await sharp({ create: { width: 64, height: 36, channels: 3, background: { r: 0x20, g: 0x40, b: 0xc0 } } })
      .png()
      .toFile(image);
    const red = path.join(dir, 'red.png');
    await sharp({ create: { width: 30, height: 30, channels: 3, background: { r: 220, g: 30, b: 20 } } })
      .png()
      .toFile(red);

    const fromVideo = await centroidFromMedia(pkg, [video], { maxFrames: 3 });
    expect(fromVideo.frames).toBe(3);
    const fromImage = await centroidFromMedia(pkg, [image]);
    const fromRed = await centroidFromMedia(pkg, [red]);
    const cos = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    expect(Math.hypot(...fromVideo.centroid)).toBeCloseTo(1, 5);
    expect(cos(fromVideo.centroid, fromImage.centroid)).toBeGreaterThan(0.99); // letterbox bars cropped away
    expect(cos(fromVideo.centroid, fromRed.centroid)).toBeLessThan(cos(fromVideo.centroid, fromImage.centroid));
  });

  it('says what is wrong with unusable inputs', async () => {
    await expect(centroidFromMedia(pkg, [path.join(dir, 'missing.mp4')])).rejects.toMatchObject({ code: 'E_INPUT_NOT_FOUND' });
    const junk = path.join(dir, 'junk.mp4');
    await writeFile(junk, 'not a video');
    await expect(centroidFromMedia(pkg, [junk])).rejects.toMatchObject({ code: 'E_INPUT_NOT_VIDEO' });
  });
});
