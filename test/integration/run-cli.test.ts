import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, spawnCli, type CliResult } from '../helpers/cli.js';
import { makeTestVideo, probeVideo, type TestVideoSpec } from '../helpers/media.js';
import { decodeFrameMasks, readOutputs } from '../helpers/outputs.js';

/**
 * Acceptance tests of `streamseg run` as a new user runs it: the real CLI from source, its
 * own redis-server (no REDIS_URL), real ffmpeg/ffprobe and ONNX Runtime. The 64x64 fixture
 * model keeps inference cheap; one test runs the shipped models/default package.
 */

const TEST_MODEL = 'test/fixtures/test-model';
// The user's environment, minus a REDIS_URL that would make `run` skip its own redis-server.
const RUN_ENV: NodeJS.ProcessEnv = { REDIS_URL: undefined, LOG_LEVEL: undefined, STREAMSEG_MODEL: TEST_MODEL };

interface RunCase {
  name: string;
  file: string;
  spec: TestVideoSpec;
  /** `run --fps`: resample to this rate. */
  fps?: number;
  /**
   * Frames the producer decodes; 'cfr': as many as ffmpeg's fps filter makes of the source at
   * its average rate (a variable-rate source is decoded at a constant rate).
   */
  expectedFrames: number | 'cfr';
  /** Index of the testsrc2 → mandelbrot cut among the decoded frames. */
  expectedCut: number;
  /** Pixel format the sink encodes annotated.mp4 with: always yuv420p (odd sizes are padded by one pixel). */
  pixFmt: 'yuv420p';
}

const H264 = ['libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];

const CASES: RunCase[] = [
  {
    name: 'MP4 / H.264, 320x240',
    file: 'h264.mp4',
    spec: { width: 320, height: 240, fps: 10, framesPerScene: [12, 12], video: H264 },
    expectedFrames: 24,
    expectedCut: 12,
    pixFmt: 'yuv420p',
  },
  {
    name: 'AVI / MPEG-4 Part 2, 192x144',
    file: 'mpeg4.avi',
    spec: { width: 192, height: 144, fps: 10, framesPerScene: [10, 14], video: ['mpeg4', '-q:v', '4'] },
    expectedFrames: 24,
    expectedCut: 10,
    pixFmt: 'yuv420p',
  },
  {
    // Frames alternate 0.5x and 1.5x durations; the producer decodes at the average rate (CFR).
    // Even source frames keep their nominal time, so the cut (source frame 12) stays at 12.
    name: 'MKV / H.264 with Opus audio and a variable frame rate, 160x120',
    file: 'vfr-audio.mkv',
    spec: { width: 160, height: 120, fps: 10, framesPerScene: [12, 12], video: H264, audio: true, variableFrameRate: true },
    expectedFrames: 'cfr',
    expectedCut: 12,
    pixFmt: 'yuv420p',
  },
  {
    name: 'WebM / VP9 with Opus audio, 160x120',
    file: 'vp9.webm',
    spec: {
      width: 160,
      height: 120,
      fps: 10,
      framesPerScene: [14, 10],
      video: ['libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k'],
      audio: true,
    },
    expectedFrames: 24,
    expectedCut: 14,
    pixFmt: 'yuv420p',
  },
  {
    // 20 fps source resampled by `run --fps 10`: every other frame, cut at source frame 10 → 5.
    name: 'MOV / H.264 720x528 resampled with --fps 10',
    file: 'h264-720x528.mov',
    spec: { width: 720, height: 528, fps: 20, framesPerScene: [10, 10], video: H264 },
    fps: 10,
    expectedFrames: 10,
    expectedCut: 5,
    pixFmt: 'yuv420p',
  },
  {
    // H.264 yuv420p needs even sizes: annotated.mp4 is padded to 162x98, the masks stay 161x97.
    name: 'MP4 / H.264 4:4:4 at an odd size, 161x97',
    file: 'odd-161x97.mp4',
    spec: { width: 161, height: 97, fps: 10, framesPerScene: [12, 12], video: ['libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv444p'] },
    expectedFrames: 24,
    expectedCut: 12,
    pixFmt: 'yuv420p',
  },
];

const exec = promisify(execFile);

/** Frames ffmpeg's own fps filter makes of the video at `fps`: what a constant-rate decode must yield. */
async function cfrFrameCount(file: string, fps: number): Promise<number> {
  const { stdout } = await exec('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v:0', '-vf', `fps=${fps}`, '-f', 'framemd5', '-']);
  return stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
}

/** The video stream's start_time in ms: where the first frame's timestamp must be. */
async function videoStartMs(file: string): Promise<number> {
  const { stdout } = await exec('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=start_time', '-of', 'csv=p=0', file]);
  return Math.max(0, Number.parseFloat(stdout) * 1000 || 0);
}

/** Gaps between consecutive video packet times, in whole milliseconds (one value: constant rate). */
async function frameIntervalsMs(file: string): Promise<number[]> {
  const { stdout } = await exec('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file]);
  const times = stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .sort((a, b) => a - b);
  return times.slice(1).map((t, i) => Math.round((t - times[i]!) * 1000));
}

describe('streamseg run <input> (own redis-server, fixture model)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-run-cli-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(CASES)('$name', async (c) => {
    const input = path.join(dir, c.file);
    await makeTestVideo(input, c.spec);
    const source = await probeVideo(input);
    expect(source).toMatchObject({ width: c.spec.width, height: c.spec.height });
    if (c.spec.variableFrameRate) expect(new Set(await frameIntervalsMs(input)).size).toBeGreaterThan(1);
    const expectedFrames = c.expectedFrames === 'cfr' ? await cfrFrameCount(input, c.spec.fps) : c.expectedFrames;

    const outDir = path.join(dir, `out-${c.file}`);
    const args = ['run', input, '--out', outDir, ...(c.fps ? ['--fps', String(c.fps)] : [])];
    const result = await runCli(args, RUN_ENV);
    expect(result.stderr.split('\n').filter((l) => l.startsWith('streamseg: '))).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual(['annotated.mp4', 'masks.ndjson', 'report.json'].map((f) => path.join(outDir, f)));

    const { width, height } = c.spec;
    const fps = c.fps ?? c.spec.fps;
    const { report, masks, annotated } = await readOutputs(outDir);

    // report.json: the frames decoded and the one cut, at the frame where the source switches.
    expect(report.frames).toBe(expectedFrames);
    // source.fps is the source's own rate; output.fps the rate frames were decoded and written at
    expect(report.source).toMatchObject({ width, height, fps: c.spec.fps });
    expect(report.output.fps).toBe(fps);
    expect(report.scenes.map((s) => [s.index, s.startFrame, s.endFrame, s.frames])).toEqual([
      [0, 0, c.expectedCut, c.expectedCut],
      [1, c.expectedCut, expectedFrames, expectedFrames - c.expectedCut],
    ]);

    // annotated.mp4: H.264 at the source size (an odd side padded by one), one frame per decoded frame, at the output rate.
    const video = await probeVideo(annotated);
    expect(video).toMatchObject({ codec: 'h264', width: width + (width % 2), height: height + (height % 2), frames: report.frames, pixFmt: c.pixFmt });
    expect(video.fps).toBeCloseTo(fps, 6);

    // masks.ndjson: one line per frame, in order, scenes as reported, masks that decode, times
    // from the source's first frame on (Opus in MKV/WebM puts the video at 0.007 s, not 0).
    expect(masks.map((m) => m.index)).toEqual([...Array(report.frames).keys()]);
    const startMs = await videoStartMs(input);
    for (const line of masks) {
      expect(line.scene).toBe(line.index < c.expectedCut ? 0 : 1);
      expect(line.size).toEqual([height, width]);
      expect(line.timestampMs).toBeCloseTo(startMs + (line.index * 1000) / fps, 6);
      expect(line.adapters).toEqual([]); // the fixture model has no adapters
      const areas = decodeFrameMasks(line, height, width);
      expect(Object.values(areas).reduce((a, b) => a + b, 0)).toBe(width * height);
    }
  });

  it('runs the shipped models/default package on a synth video: cuts where synth put them, adapters per scene', async () => {
    const input = path.join(dir, 'street.mp4');
    const synth = await runCli(['synth', '--out', input, '--frames', '48', '--scenes', '2', '--size', '160x160', '--seed', '1']);
    expect(synth.code).toBe(0);
    const truth = JSON.parse(await readFile(path.join(dir, 'street.scenes.json'), 'utf8')) as {
      frames: number;
      scenes: { startFrame: number; endFrame: number; components: string[] }[];
    };
    expect(truth.scenes).toHaveLength(2);

    const outDir = path.join(dir, 'out-street');
    const result = await runCli(['run', input, '--out', outDir], { REDIS_URL: undefined, STREAMSEG_MODEL: undefined });
    expect(result.code).toBe(0);
    const { report, masks, annotated } = await readOutputs(outDir);

    expect(report.frames).toBe(truth.frames);
    expect(report.scenes.map((s) => s.startFrame)).toEqual(truth.scenes.map((s) => s.startFrame));
    expect(report.scenes.map((s) => s.endFrame)).toEqual(truth.scenes.map((s) => s.endFrame));
    const known = new Set(await readdir(path.join(REPO_ROOT, 'models/default/adapters')));
    report.scenes.forEach((scene, i) => {
      // Each scene lists the adapters it was segmented with: a scene under a condition retrieves
      // at least one (real package, real retrieval); a clear one may run the base model (none
      // within the retrieval's max distance). Listed adapters exist and their weights sum to 1.
      expect(Array.isArray(scene.adapters)).toBe(true);
      if (!truth.scenes[i]!.components.includes('clear')) expect(scene.adapters.length, `scene ${i}`).toBeGreaterThan(0);
      for (const adapter of scene.adapters) expect(known.has(adapter.name), adapter.name).toBe(true);
      if (scene.adapters.length > 0) expect(scene.adapters.reduce((sum, a) => sum + a.weight, 0)).toBeCloseTo(1, 6);
    });
    expect(report.scenes.some((s) => s.adapters.length > 0)).toBe(true);
    expect(masks).toHaveLength(truth.frames);
    for (const line of masks) {
      const scene = report.scenes.find((s) => line.index >= s.startFrame && line.index < s.endFrame)!;
      expect(line.scene).toBe(scene.index);
      expect(line.adapters).toEqual(scene.adapters);
      decodeFrameMasks(line, 160, 160);
    }
    expect(await probeVideo(annotated)).toMatchObject({ codec: 'h264', width: 160, height: 160, frames: truth.frames });
  });
});

/** A process as /proc describes it: pid plus start time, so a recycled pid is not mistaken for it. */
interface ProcessId {
  pid: number;
  comm: string;
  startTime: string;
}

async function readProcess(pid: number): Promise<(ProcessId & { state: string }) | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses; split after the last ")".
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    return { pid, comm, state: fields[0]!, startTime: fields[19]! };
  } catch {
    return null;
  }
}

/** Whether that very process still runs (a zombie waiting to be reaped counts as gone). */
async function stillRunning(p: ProcessId): Promise<boolean> {
  const now = await readProcess(p.pid);
  return now !== null && now.startTime === p.startTime && now.state !== 'Z';
}

async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => []);
  const lists = await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')));
  return lists.flatMap((l) => l.split(' ').filter(Boolean).map(Number));
}

/** Runs the CLI and records every child process it starts (redis-server, ffprobe, ffmpeg) while it runs. */
async function runCliWatchingChildren(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult & { children: ProcessId[] }> {
  const child = spawnCli(args, env);
  const seen = new Map<number, ProcessId>();
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  let running = true;
  const watcher = (async () => {
    while (running) {
      for (const pid of await childrenOf(child.pid!)) {
        // Read again every round: right after fork, before exec, a child is still called "node".
        const info = await readProcess(pid);
        if (info && info.state !== 'Z') seen.set(pid, { pid, comm: info.comm, startTime: info.startTime });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const code = await closed;
  running = false;
  await watcher;
  return { code, stdout, stderr, children: [...seen.values()] };
}

describe('streamseg run on bad input', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-run-bad-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const BAD_INPUTS: { name: string; file: string; content?: string; directory?: true; code: string; says: RegExp }[] = [
    { name: 'a missing file', file: 'missing.mp4', code: 'E_INPUT_NOT_FOUND', says: /no such file; check the path/ },
    { name: 'a directory', file: 'videos', directory: true, code: 'E_INPUT_DIRECTORY', says: /is a directory, not a video file/ },
    // ffprobe reads a 0-byte file as invalid data: the producer refuses it as not a video.
    { name: 'an empty file', file: 'empty.mp4', content: '', code: 'E_INPUT_NOT_VIDEO', says: /not a video ffprobe can read/ },
    {
      name: 'a text file renamed .mp4',
      file: 'notes.mp4',
      content: 'shopping list\n- milk\n- eggs\n',
      code: 'E_INPUT_NOT_VIDEO',
      says: /not a video ffprobe can read/,
    },
  ];

  it.each(BAD_INPUTS)('$name: exit 1, one line on stderr naming the file and the problem, no process left behind', async (bad) => {
    const input = path.join(dir, bad.file);
    if (bad.content !== undefined) await writeFile(input, bad.content);
    if (bad.directory) await mkdir(input);
    const outDir = path.join(dir, `out-${bad.file}`);

    const result = await runCliWatchingChildren(['run', input, '--out', outDir], RUN_ENV);

    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    // Exactly one line: no log lines, stack traces or progress bars around it.
    expect(result.stderr).toMatch(/^streamseg: [^\n]+\n$/);
    expect(result.stderr).toContain(bad.code);
    expect(result.stderr).toContain(input);
    expect(result.stderr).toMatch(bad.says);

    // `run` started its own redis-server (so the check below is not vacuous) and stopped it,
    // and every ffprobe/ffmpeg it ran, before exiting.
    expect(result.children.map((c) => c.comm)).toContain('redis-server');
    const deadline = Date.now() + 2000;
    let left: ProcessId[] = result.children;
    while (left.length > 0 && Date.now() < deadline) {
      const alive = await Promise.all(left.map(stillRunning));
      left = left.filter((_, i) => alive[i]);
      if (left.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(left.map((p) => `${p.comm} (pid ${p.pid})`)).toEqual([]);
  });
});
