import { spawn } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameSocket } from '../../src/shared/media/frame-socket.js';
import { startFrameReader } from '../../src/shared/media/media-process.js';

/**
 * FrameSocket with real child processes: a node child writes bytes to its stdout (the socket's
 * child end) in uneven chunks, as ffmpeg's pipe writes land; the reader must cut exact frames.
 */
const FRAME = 100_003; // odd, so chunks never line up with frames

/** A node script that writes `bytes` bytes (byte i = i mod 251) to stdout in chunks of 1..70000 bytes, then exits. */
const WRITE_SCRIPT = (bytes: number) => `
  let sent = 0, seed = 7;
  const next = () => {
    if (sent >= ${bytes}) return;
    seed = (seed * 1103515245 + 12345) >>> 0;
    const n = Math.min(${bytes} - sent, 1 + (seed % 70000));
    const chunk = Buffer.alloc(n);
    for (let i = 0; i < n; i++) chunk[i] = (sent + i) % 251;
    sent += n;
    if (process.stdout.write(chunk)) setImmediate(next); else process.stdout.once('drain', next);
  };
  next();`;

/** That script as a child writing into the socket's child end. */
function writer(socket: FrameSocket, bytes: number) {
  const child = spawn(process.execPath, ['-e', WRITE_SCRIPT(bytes)], { stdio: ['ignore', socket.childEnd, 'ignore'] });
  socket.releaseChildEnd();
  return child;
}

function expectFrame(frame: Buffer, index: number): void {
  expect(frame.length).toBe(FRAME);
  const start = index * FRAME;
  for (const offset of [0, 1, 65535, 65536, FRAME - 1]) expect(frame[offset], `frame ${index} byte ${offset}`).toBe((start + offset) % 251);
}

describe('FrameSocket', () => {
  it('cuts a child stdout written in uneven chunks into exact frames, in one reused buffer', async () => {
    const socket = await FrameSocket.open();
    const child = writer(socket, 7 * FRAME);
    const frames = socket.frames(FRAME, 'test');
    const seen: Buffer[] = [];
    for (;;) {
      const step = await frames.next();
      if (step.done) {
        expect(step.value).toBe(7);
        break;
      }
      expectFrame(step.value, seen.length);
      seen.push(step.value);
    }
    expect(new Set(seen).size).toBe(1);
    await once(child, 'close');
    socket.close();
  });

  it('fails naming the frame when the output ends inside one', async () => {
    const socket = await FrameSocket.open();
    writer(socket, 2 * FRAME + 500);
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const frame of socket.frames(FRAME, 'clip.mp4')) got.push(frame[0]!);
      })(),
    ).rejects.toMatchObject({
      code: 'E_INPUT_DECODE',
      message: expect.stringMatching(/clip\.mp4: decoder output ended inside frame 2 \(500 of 100003 bytes\)/),
    });
    expect(got).toHaveLength(2);
    socket.close();
  });

  it('a reader that stops early closes the socket: the child writing to it ends instead of blocking', async () => {
    const socket = await FrameSocket.open();
    const child = writer(socket, 400 * FRAME);
    for await (const frame of socket.frames(FRAME)) {
      expectFrame(frame, 0);
      break;
    }
    socket.close();
    const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
    // EPIPE on its next write ends it; it never gets to write all 400 frames.
    expect(code === 0 && signal === null).toBe(false);
  });

  it('startFrameReader falls back to the stdout pipe where the temporary directory cannot hold the socket', async () => {
    const tmpdir = process.env.TMPDIR;
    process.env.TMPDIR = path.join(os.tmpdir(), 'x'.repeat(120));
    try {
      await expect(FrameSocket.open()).rejects.toThrow();
      const reader = await startFrameReader(process.execPath, ['-e', WRITE_SCRIPT(3 * FRAME)]);
      expect(reader.child.stdout).not.toBeNull();
      let count = 0;
      for await (const frame of reader.frames(FRAME, 'fallback')) expectFrame(frame, count++);
      expect(count).toBe(3);
      reader.close();
    } finally {
      if (tmpdir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmpdir;
    }
  });

  it('startFrameReader reads through a socket where it can', async () => {
    const reader = await startFrameReader(process.execPath, ['-e', WRITE_SCRIPT(2 * FRAME)]);
    expect(reader.child.stdout).toBeNull();
    let count = 0;
    for await (const frame of reader.frames(FRAME, 'socket')) expectFrame(frame, count++);
    expect(count).toBe(2);
    reader.close();
  });
});
