import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/shared/free-port.js';
import { LiveOutputRepository } from '../../src/workers/sink/live-output.repository.js';
import { until } from './live-sources.js';

/** Whether something listens on 127.0.0.1:port (TCP), read from /proc without connecting to it. */
async function listening(port: number): Promise<boolean> {
  const table = await readFile('/proc/net/tcp', 'utf8');
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((line) => {
    const cols = line.trim().split(/\s+/);
    return cols[1] === local && cols[3] === '0A';
  });
}

describe('live outputs (ffmpeg)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-live-out-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rolling HLS plus an RTSP re-stream published to a server (an ffmpeg listener receives it)', async () => {
    const port = await findFreePort();
    const receiver = spawn(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-rtsp_flags', 'listen', '-i', `rtsp://127.0.0.1:${port}/out`, '-f', 'framecrc', '-'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let frames = '';
    receiver.stdout.on('data', (d: Buffer) => (frames += d.toString()));
    let receiverLog = '';
    receiver.stderr.on('data', (d: Buffer) => (receiverLog += d.toString()));
    const received = new Promise<number | null>((resolve) => receiver.once('exit', resolve));
    await until('the RTSP listener', () => listening(port));

    const width = 96;
    const height = 64;
    const out = new LiveOutputRepository({ dir, width, height, fps: 10, listSize: 3, restreamUrl: `rtsp://127.0.0.1:${port}/out` });
    const frame = Buffer.alloc(width * height * 3);
    for (let i = 0; i < 60; i++) {
      frame.fill(i * 4);
      await out.write(frame);
    }
    await out.finish();
    // The publisher's TEARDOWN ends the listener's input: it exits cleanly after decoding the stream.
    expect(await received).toBe(0);
    expect(receiverLog).toBe('');
    // framecrc: one line per received frame.
    expect(frames.split('\n').filter((l) => /^\d+,/.test(l)).length).toBeGreaterThanOrEqual(30);
    const playlist = await readFile(path.join(dir, 'index.m3u8'), 'utf8');
    expect(playlist).toContain('#EXT-X-ENDLIST');
    // 6 s of frames in 1 s segments, 3 kept: the playlist rolled and old segments were deleted.
    expect(Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)?.[1])).toBeGreaterThanOrEqual(3);
    expect((await readdir(dir)).filter((f) => f.endsWith('.ts')).length).toBeLessThanOrEqual(4);
  });

  it('a restream target that is not there is ignored: HLS goes on', async () => {
    const port = await findFreePort();
    const sub = path.join(dir, 'no-server');
    await mkdir(sub);
    const out = new LiveOutputRepository({ dir: sub, width: 64, height: 48, fps: 10, restreamUrl: `rtsp://127.0.0.1:${port}/nobody` });
    const frame = Buffer.alloc(64 * 48 * 3, 128);
    for (let i = 0; i < 25; i++) await out.write(frame);
    await out.finish();
    expect(await readFile(path.join(sub, 'index.m3u8'), 'utf8')).toContain('#EXT-X-ENDLIST');
  });

  it('a sink that takes over continues the playlist: numbering goes on after a discontinuity', async () => {
    const sub = path.join(dir, 'takeover');
    await mkdir(sub);
    const options = { dir: sub, width: 64, height: 48, fps: 10, listSize: 10 };
    const segments = (playlist: string) => [...playlist.matchAll(/^index(\d+)\.ts$/gm)].map((m) => Number(m[1]));
    const frame = Buffer.alloc(64 * 48 * 3);
    const first = new LiveOutputRepository(options);
    for (let i = 0; i < 30; i++) {
      frame.fill(i * 8);
      await first.write(frame);
    }
    // Two finished segments on disk, then the first sink dies (no ENDLIST, no clean close).
    await until('two segments in the first playlist', async () => segments(await readFile(path.join(sub, 'index.m3u8'), 'utf8').catch(() => '')).length >= 2);
    await first.abort();
    const before = segments(await readFile(path.join(sub, 'index.m3u8'), 'utf8'));

    const second = new LiveOutputRepository(options);
    for (let i = 0; i < 30; i++) {
      frame.fill(255 - i * 8);
      await second.write(frame);
    }
    await second.finish();
    const playlist = await readFile(path.join(sub, 'index.m3u8'), 'utf8');
    const after = segments(playlist);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBeGreaterThan(before.length);
    // Numbers keep rising across the takeover: no segment name is reused.
    expect(after.every((n, i) => i === 0 || n > after[i - 1]!)).toBe(true);
    // A discontinuity between the last old segment and the first new one (players reset their decoder).
    const restart = playlist.lastIndexOf('#EXT-X-DISCONTINUITY');
    expect(restart).toBeGreaterThan(playlist.indexOf(`index${before.at(-1)}.ts`));
    expect(restart).toBeLessThan(playlist.indexOf(`index${after[before.length]}.ts`));
    expect(playlist).toContain('#EXT-X-ENDLIST');
  });
});
