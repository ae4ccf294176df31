import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobName } from '../../src/shared/queues.js';
import { runCli } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { type FaultStack, startFaultStack } from './helpers/fault-stack.js';
import { failedJob, ffmpegProcessesOn, finalState, indices, keysWithoutTtl, readOutputs } from './helpers/pipeline.js';
import { TEST_MODEL } from './helpers/roles.js';

const run = promisify(execFile);
const H264 = ['libx264', '-pix_fmt', 'yuv420p'];

/**
 * Bad input against a running cluster (producer, worker, sink processes): each video fails with
 * a one-line reason naming the problem (job failed with it, no retries), the good videos
 * submitted alongside complete, no ffmpeg is left running, no key of a video is left without a TTL.
 * Unit and integration tests cover the same checks closer to the code; see docs/RELIABILITY.md.
 */
describe('bad input never takes the pipeline down', () => {
  let stack: FaultStack;

  /** The inputs, under `<dir>/in`. */
  const file = (name: string) => path.join(stack.dir, 'in', name);

  beforeAll(async () => {
    stack = await startFaultStack({ prefix: 'bad' });
    await mkdir(path.join(stack.dir, 'in'));
    const ff = (...args: string[]) => run('ffmpeg', ['-v', 'error', '-y', ...args]);
    await makeTestVideo(file('good.mp4'), { width: 96, height: 54, fps: 10, framesPerScene: [20, 20], video: H264 });
    await ff(
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=96x54:rate=10',
      '-frames:v',
      '60',
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      '-movflags',
      '+faststart',
      file('faststart.mp4'),
    );
    await writeFile(file('empty.mp4'), '');
    await writeFile(file('notes.mp4'), 'these are meeting notes, not a video\n'.repeat(50));
    await ff('-f', 'lavfi', '-i', 'testsrc=size=64x48', '-frames:v', '1', file('still.png'));
    await copyFile(file('still.png'), file('picture.mp4'));
    const good = await readFile(file('good.mp4'));
    // moov at the end (no faststart): cut in half, the index is gone.
    await writeFile(file('truncated.mp4'), good.subarray(0, good.length >> 1));
    // moov first: cut at 60 %, the index survives and the first frames decode.
    const faststart = await readFile(file('faststart.mp4'));
    await writeFile(file('truncated-faststart.mp4'), faststart.subarray(0, Math.floor(faststart.length * 0.6)));
    // 200 bytes flipped in the second two thirds of the stream: decodes with concealed errors.
    const flipped = Buffer.from(faststart);
    for (let k = 0, x = 12345; k < 200; k++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      flipped[Math.floor(flipped.length / 3) + (x % Math.floor((flipped.length * 2) / 3))]! ^= 0xff;
    }
    await writeFile(file('bit-flipped.mp4'), flipped);
    await ff('-f', 'lavfi', '-i', 'sine=duration=1', file('audio-only.m4a'));
    // ffmpeg writes no video track for 0 frames in MP4; a Y4M header with no frame has one.
    await ff('-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-frames:v', '0', '-c:v', 'libx264', file('zero-frames.mp4'));
    await writeFile(file('zero-frames.y4m'), 'YUV4MPEG2 W64 H48 F10:1 Ip C420jpeg\n');
    const frame = Buffer.alloc((64 * 48 * 3) / 2, 0x80);
    await writeFile(file('huge.y4m'), Buffer.concat([Buffer.from('YUV4MPEG2 W10000 H10000 F10:1 Ip C420jpeg\nFRAME\n'), Buffer.alloc(1000, 0x80)]));
    await writeFile(file('impossible.y4m'), Buffer.concat([Buffer.from('YUV4MPEG2 W100000 H100000 F10:1 Ip C420jpeg\nFRAME\n'), Buffer.alloc(1000, 0x80)]));
    await writeFile(
      file('fast.y4m'),
      Buffer.concat([
        Buffer.from('YUV4MPEG2 W64 H48 F100000:1 Ip C420jpeg\n'),
        ...Array.from({ length: 3 }, () => Buffer.concat([Buffer.from('FRAME\n'), frame])),
      ]),
    );
  });

  afterAll(async () => {
    await stack?.stop();
  });

  async function failedDecode(videoId: string): Promise<{ reason: string; attemptsMade: number; error: string }> {
    const state = await finalState(stack.client, videoId);
    expect(state.status).toBe('failed');
    const job = await failedJob(stack.client.queues.videos, videoId);
    return { reason: job.failedReason, attemptsMade: job.attemptsMade, error: state.error! };
  }

  it.each([
    ['empty.mp4', 'E_INPUT_NOT_VIDEO', /empty\.mp4: not a video ffprobe can read/],
    ['notes.mp4', 'E_INPUT_NOT_VIDEO', /notes\.mp4: not a video ffprobe can read/],
    ['picture.mp4', 'E_INPUT_NOT_VIDEO', /picture\.mp4: ffprobe reads it as png_pipe \(a still image or text\)/],
    ['truncated.mp4', 'E_INPUT_NOT_VIDEO', /truncated\.mp4: not a video ffprobe can read \(moov atom not found/],
    ['audio-only.m4a', 'E_INPUT_NO_VIDEO_STREAM', /audio-only\.m4a: has no video stream/],
    ['zero-frames.mp4', 'E_INPUT_NO_VIDEO_STREAM', /zero-frames\.mp4: has no video stream/],
    ['zero-frames.y4m', 'E_INPUT_EMPTY', /zero-frames\.y4m: the video stream has no frames/],
    ['huge.y4m', 'E_INPUT_DIMENSIONS', /huge\.y4m: header claims 10000x10000 at 10 fps; streamseg accepts 1-8192 pixels a side/],
    ['impossible.y4m', 'E_INPUT_NOT_VIDEO', /impossible\.y4m: not a video ffprobe can read \(.*Picture size 100000x100000 is invalid/],
    ['fast.y4m', 'E_INPUT_DIMENSIONS', /fast\.y4m: header claims 64x48 at 100000 fps; .*Pass --fps to resample it/],
  ])('%s fails with %s and one line naming the file and the problem', async (name, code, message) => {
    const videoId = `bad-${name.replace(/\W/g, '-')}`;
    await stack.client.submitter.submit(file(name), { videoId, outDir: stack.outDir(videoId) });
    const failed = await failedDecode(videoId);
    expect(failed.error.startsWith(`${code}: `)).toBe(true);
    expect(failed.error).toMatch(message);
    expect(failed.error).not.toContain('\n');
    expect(failed.reason).toBe(failed.error);
    expect(failed.attemptsMade).toBe(1);
  });

  it.each([
    ['bit-flipped.mp4', 50, /the decoder reported \d+ error line\(s\) \(first: ".+"\); damaged frames were concealed/],
    ['truncated-faststart.mp4', undefined, /only \d+ of the 60 frames the header announced could be decoded/],
  ])('%s (damaged but partly decodable) yields the decodable frames and a warning in report.json', async (name, frames, warning) => {
    const videoId = `damaged-${name.replace(/\W/g, '-')}`;
    await stack.client.submitter.submit(file(name), { videoId, outDir: stack.outDir(videoId) });
    const state = await finalState(stack.client, videoId);
    expect(state.error).toBeUndefined();
    const outputs = await readOutputs(stack.outDir(videoId));
    expect(outputs.report.warnings.some((w) => warning.test(w))).toBe(true);
    expect(outputs.lines.map((l) => l.index)).toEqual(indices(outputs.report.frames));
    expect(outputs.video.frames).toBe(outputs.report.frames);
    // Concealed errors keep (nearly) every frame; a cut file keeps the frames before the cut.
    if (frames) expect(outputs.report.frames).toBeGreaterThanOrEqual(frames);
    else expect(outputs.report.frames).toBeLessThan(60);
    expect(outputs.report.frames).toBeGreaterThan(0);
  });

  it.each([
    'file:///etc/passwd',
    'concat:/etc/passwd|/etc/hosts',
    'data:video/mp4;base64,AAAA',
    'subfile,,start,0,end,100,,:/etc/passwd',
    'ftp://example.com/v.mp4',
  ])('refuses the URL %s at submission with E_INPUT_URL_SCHEME', async (url) => {
    await expect(stack.client.submitter.submit(url, { outDir: stack.outDir('never') })).rejects.toMatchObject({
      code: 'E_INPUT_URL_SCHEME',
      message: expect.stringMatching(/URLs are not accepted; give a local file path or an http, https, rtsp or udp URL$/),
    });
  });

  it('the CLI prints the one-line reason for a refused URL, an id with path traversal and an output outside STREAMSEG_OUT', async () => {
    const cliEnv = { REDIS_URL: stack.redis.url, STREAMSEG_OUT: stack.outRoot };
    const [url, id, out] = await Promise.all([
      runCli(['submit', 'concat:/etc/passwd|/etc/hosts'], cliEnv),
      runCli(['submit', file('good.mp4'), '--id', '../../etc'], cliEnv),
      runCli(['submit', file('good.mp4'), '--out', path.join(stack.outRoot, '..', 'escaped')], cliEnv),
    ]);
    expect(url.code).toBe(1);
    expect(url.stderr.trim()).toBe('streamseg: E_INPUT_URL_SCHEME: concat: URLs are not accepted; give a local file path or an http, https, rtsp or udp URL');
    expect(id.code).toBe(1);
    expect(id.stderr.trim()).toMatch(/^streamseg: E_VIDEO_ID: --id "\.\.\/\.\.\/etc": must be 1-64 letters, digits/);
    expect(out.code).toBe(1);
    expect(out.stderr.trim()).toMatch(/^streamseg: E_OUTPUT_DIR: output directory .*escaped is outside the output root/);
  });

  it('malformed payloads pushed straight into every queue fail at once with E_JOB_PAYLOAD (or no handler), naming the field', async () => {
    const opts = { attempts: 3, backoff: { type: 'fixed', delay: 10 } };
    const goodInput = { kind: 'file', path: file('good.mp4') };
    const pushed = await Promise.all([
      stack.client.queues.videos.add(
        JobName.DecodeVideo,
        { videoId: '../../etc', input: goodInput, options: { outDir: stack.outDir('x') }, submittedAt: 1 },
        opts,
      ),
      stack.client.queues.videos.add(
        JobName.DecodeVideo,
        { videoId: 'url-file', input: { kind: 'url', url: 'file:///etc/passwd' }, options: { outDir: stack.outDir('x') }, submittedAt: 1 },
        opts,
      ),
      stack.client.queues.videos.add(JobName.DecodeVideo, 'not even an object', opts),
      stack.client.queues.videos.add('rm-rf', { videoId: 'x' }, opts),
      stack.client.queues.frames.add(JobName.SegmentFrames, { videoId: 'a/b', scene: 0, sceneStartFrame: 0, frames: [{ index: 0, timestampMs: 0 }] }, opts),
      stack.client.queues.frames.add(JobName.SegmentFrames, { videoId: 'ok', scene: -1, sceneStartFrame: 0, frames: [] }, opts),
      stack.client.queues.sink.add(JobName.AssembleVideo, { videoId: 'ok' }, opts),
      stack.client.queues.sink.add(JobName.AssembleVideo, { videoId: '..', outDir: stack.outDir('x') }, opts),
    ]);
    const expected = [
      /^E_JOB_PAYLOAD: malformed videos job: videoId: must be 1-64 letters/,
      /^E_JOB_PAYLOAD: malformed videos job: input\.url: only http, https, rtsp and udp URLs are accepted/,
      /^E_JOB_PAYLOAD: malformed videos job: \(root\): /,
      /^queue videos has no handler for job "rm-rf"/,
      /^E_JOB_PAYLOAD: malformed frames job: videoId: must be/,
      /^E_JOB_PAYLOAD: malformed frames job: scene: .*frames: /,
      /^E_JOB_PAYLOAD: malformed sink job: outDir: /,
      /^E_JOB_PAYLOAD: malformed sink job: videoId: must be/,
    ];
    for (const [k, job] of pushed.entries()) {
      const queue = [stack.client.queues.videos, stack.client.queues.frames, stack.client.queues.sink].find((q) => q.name === job.queueName)!;
      const done = await failedJob(queue, job.id!);
      expect(done.failedReason).toMatch(expected[k]!);
      expect(done.attemptsMade).toBe(1);
    }
  });

  it('a sink job whose outDir escapes STREAMSEG_OUT fails with E_OUTPUT_DIR and writes nothing there', async () => {
    const escaped = path.join(stack.dir, 'escaped-by-payload');
    await stack.client.states.init('escape', { outDir: escaped, submittedAt: Date.now() });
    const job = await stack.client.queues.sink.add(JobName.AssembleVideo, { videoId: 'escape', outDir: escaped }, { jobId: 'escape', attempts: 3 });
    const failed = await failedJob(stack.client.queues.sink, job.id!);
    expect(failed.failedReason).toMatch(/^E_OUTPUT_DIR: output directory .*escaped-by-payload is outside the output root/);
    expect(failed.attemptsMade).toBe(1);
    expect((await stack.client.states.get('escape'))!.error).toBe(failed.failedReason);
    await expect(readFile(path.join(escaped, 'masks.ndjson.partial'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a file name that looks like a protocol or an option is read as a plain file', async () => {
    await copyFile(file('good.mp4'), file('concat:evil.mp4'));
    await copyFile(file('good.mp4'), file('-i.mp4'));
    for (const name of ['concat:evil.mp4', '-i.mp4']) {
      const videoId = `odd-name-${name.length}`;
      await stack.client.submitter.submit(file(name), { videoId, outDir: stack.outDir(videoId) });
      expect((await finalState(stack.client, videoId)).status).toBe('done');
    }
  });

  it('a worker whose model does not match its manifest refuses to start with one line', async () => {
    const model = path.join(stack.dir, 'mismatched-model');
    await cp(TEST_MODEL, model, { recursive: true });
    const manifest = JSON.parse(await readFile(path.join(model, 'model.json'), 'utf8')) as { input: { name: string } };
    manifest.input.name = 'pixels';
    await writeFile(path.join(model, 'model.json'), JSON.stringify(manifest));
    const worker = await runCli(['worker'], { ...stack.env, STREAMSEG_MODEL: model });
    expect(worker.code).toBe(1);
    const last = worker.stderr.trim().split('\n').at(-1)!;
    expect(last).toMatch(/^streamseg: E_MODEL_MISMATCH: .*pixels/);
  });

  it('meanwhile good videos completed, no ffmpeg is left running and every video key has a TTL', async () => {
    await stack.client.submitter.submit(file('good.mp4'), { videoId: 'good', outDir: stack.outDir('good') });
    const state = await finalState(stack.client, 'good');
    expect(state.status).toBe('done');
    expect((await readOutputs(stack.outDir('good'))).lines.map((l) => l.index)).toEqual(indices(40));
    expect(stack.roles.every((r) => r.child.exitCode === null)).toBe(true);
    expect(await ffmpegProcessesOn(stack.dir)).toEqual([]);
    expect(await keysWithoutTtl(stack.data, 'ss:{*')).toEqual([]);
  });
});
