import { execFile, spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveVideoOptions, submissionHash } from '../../src/api/services/video-request-options.js';
import { IsoBmffBoxScanner, looksLikeIsoBmff } from '../../src/cli/iso-bmff-boxes.js';
import { videoOptionsFromFlags } from '../../src/cli/options.js';
import { REPO_ROOT, runCli, type CliResult } from '../helpers/cli.js';
import { readOutputs } from '../helpers/outputs.js';

/**
 * Issue 14, "Video fidelity (real files)": real inputs made with ffmpeg, the real
 * `streamseg run` from source (own redis-server, the 64x64 fixture model), outputs checked
 * with ffprobe. The overlay is transparent (STREAMSEG_OVERLAY_ALPHA=0), so annotated.mp4
 * must look like the source: colours and geometry can be compared pixel for pixel.
 */

const exec = promisify(execFile);
const MAIN = path.join(REPO_ROOT, 'src/cli/main.ts');
const ENV: NodeJS.ProcessEnv = { REDIS_URL: undefined, LOG_LEVEL: undefined, STREAMSEG_MODEL: 'test/fixtures/test-model', STREAMSEG_OVERLAY_ALPHA: '0' };
const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast'];

async function ffmpeg(args: string[]): Promise<void> {
  await exec('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
}

interface ProbedStream {
  index: number;
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  color_space?: string;
  color_transfer?: string;
  color_primaries?: string;
  start_time?: string;
  duration?: string;
  nb_read_frames?: string;
  side_data_list?: { rotation?: number }[];
}

async function probeStreams(file: string): Promise<ProbedStream[]> {
  const { stdout } = await exec('ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', file]);
  return (JSON.parse(stdout) as { streams: ProbedStream[] }).streams;
}

async function videoStream(file: string): Promise<ProbedStream> {
  const stream = (await probeStreams(file)).find((s) => s.codec_type === 'video');
  if (!stream) throw new Error(`${file} has no video stream`);
  return stream;
}

/** Presentation times (s) of the first video stream's frames, in order. */
async function framePtsSeconds(file: string): Promise<number[]> {
  const { stdout } = await exec('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', file]);
  // One "0.042000," line per frame (the comma ends the frame's entries), blank lines between.
  return stdout
    .split('\n')
    .map((l) => l.replace(/,+$/, '').trim())
    .filter(Boolean)
    .map(Number);
}

/** Decodes every frame of the first video stream to `pix_fmt` (ffmpeg honours the stream's colour tags). */
async function decodeRaw(file: string, pixFmt: 'rgb24' | 'gray', filter?: string): Promise<Buffer> {
  const { stdout } = await exec(
    'ffmpeg',
    ['-v', 'error', '-i', file, '-map', '0:v:0', ...(filter ? ['-vf', filter] : []), '-f', 'rawvideo', '-pix_fmt', pixFmt, '-'],
    {
      encoding: 'buffer',
      maxBuffer: 512 * 1024 * 1024,
    },
  );
  return stdout;
}

/** Top-level MP4 box types in file order. */
async function topLevelBoxes(file: string): Promise<string[]> {
  const handle = await open(file, 'r');
  try {
    const scanner = new IsoBmffBoxScanner();
    const types: string[] = [];
    const chunk = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) return types;
      types.push(...scanner.push(chunk.subarray(0, bytesRead)));
    }
  } finally {
    await handle.close();
  }
}

function expectCleanRun(result: CliResult, outDir: string): void {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout.split('\n').filter(Boolean)).toEqual(['annotated.mp4', 'masks.ndjson', 'report.json'].map((f) => path.join(outDir, f)));
}

describe('video fidelity: streamseg run on real files (issue 14)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-fidelity-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** `streamseg run <input> --out <dir>/<name>`; returns the output directory. */
  async function run(input: string, name: string, extra: string[] = []): Promise<string> {
    const outDir = path.join(dir, name);
    expectCleanRun(await runCli(['run', input, '--out', outDir, ...extra], ENV), outDir);
    return outDir;
  }

  it('odd size 641x479: annotated.mp4 is yuv420p 642x480 (edge repeated, said in report.json), masks stay 641x479', async () => {
    const input = path.join(dir, 'odd.mp4');
    await ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=642x480:rate=10:duration=1.2', '-vf', 'scale=641:479,setsar=1', ...X264, '-pix_fmt', 'yuv444p', input]);
    expect(await videoStream(input)).toMatchObject({ width: 641, height: 479 });
    const outDir = await run(input, 'odd');
    const { report, masks, annotated } = await readOutputs(outDir);
    expect(await videoStream(annotated)).toMatchObject({ codec_name: 'h264', pix_fmt: 'yuv420p', width: 642, height: 480, nb_read_frames: '12' });
    expect(report.source).toMatchObject({ width: 641, height: 479 });
    expect(report.output.video).toMatchObject({ width: 642, height: 480, pixelFormat: 'yuv420p', padded: { right: 1, bottom: 1 } });
    expect(report.output.video?.note).toMatch(/641x479.*642x480/);
    expect(masks).toHaveLength(12);
    for (const line of masks) expect(line.size).toEqual([479, 641]);
  });

  it.each([
    { size: '320x240', layout: 'yuv420p' },
    { size: '321x241', layout: 'rgb24' },
  ])('$size ($layout): the sink takes its source frames from the producer of the run, the same as its own decode of the file', async ({ size }) => {
    const input = path.join(dir, `handoff-${size}.mp4`);
    await ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=10:duration=2`, ...X264, '-pix_fmt', 'yuv444p', input]);
    const handedDir = path.join(dir, `handoff-${size}`);
    const handed = await runCli(['run', input, '--out', handedDir, '--no-progress'], { ...ENV, LOG_LEVEL: 'debug' });
    expect(handed.code).toBe(0);
    expect(handed.stderr).toContain('source frames handed over by the producer of this process');
    expect(handed.stderr).not.toContain('decoding the input file from here');
    const ownDir = path.join(dir, `own-decode-${size}`);
    const ownEnv = { ...ENV, STREAMSEG_SOURCE_HANDOFF_BYTES: '0' };
    expectCleanRun(await runCli(['run', input, '--out', ownDir, '--no-progress'], ownEnv), ownDir);
    const [a, b] = await Promise.all([readFile(path.join(handedDir, 'annotated.mp4')), readFile(path.join(ownDir, 'annotated.mp4'))]);
    expect(a.equals(b)).toBe(true);
    const masks = async (outDir: string) => (await readFile(path.join(outDir, 'masks.ndjson'), 'utf8')).replace(/"cacheHit":[a-z]+,/g, '');
    expect(await masks(handedDir)).toEqual(await masks(ownDir));
  });

  it('audio: AAC is copied, Opus transcoded to AAC, and --no-audio drops it', async () => {
    const sine = ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2'];
    const aac = path.join(dir, 'aac.mp4');
    await ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10:duration=2', ...sine, ...X264, '-pix_fmt', 'yuv420p', '-c:a', 'aac', aac]);
    const opus = path.join(dir, 'opus.webm');
    await ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x120:rate=10:duration=2',
      ...sine,
      '-c:v',
      'libvpx-vp9',
      '-deadline',
      'realtime',
      '-cpu-used',
      '8',
      '-c:a',
      'libopus',
      opus,
    ]);

    const copied = await readOutputs(await run(aac, 'aac'));
    const copiedAudio = (await probeStreams(copied.annotated)).find((s) => s.codec_type === 'audio');
    expect(copiedAudio).toMatchObject({ codec_name: 'aac' });
    expect(Number(copiedAudio!.duration)).toBeCloseTo(2, 1);
    expect(copied.report.output.audio).toEqual({ action: 'copy', codec: 'aac' });

    const transcoded = await readOutputs(await run(opus, 'opus'));
    const transcodedAudio = (await probeStreams(transcoded.annotated)).find((s) => s.codec_type === 'audio');
    expect(transcodedAudio).toMatchObject({ codec_name: 'aac' });
    expect(Number(transcodedAudio!.duration)).toBeCloseTo(2, 1);
    expect(transcoded.report.output.audio).toEqual({ action: 'aac', codec: 'opus' });

    const dropped = await readOutputs(await run(aac, 'no-audio', ['--no-audio']));
    expect((await probeStreams(dropped.annotated)).map((s) => s.codec_type)).toEqual(['video']);
    expect(dropped.report.output.audio).toMatchObject({ action: 'none', reason: expect.stringMatching(/--no-audio/) });
  });

  it('start offset: an MKV whose first frame is at 0.042 s keeps its 119 frames and their times, audio in sync', async () => {
    // Audio (PCM, transcoded to AAC on output) from 0; video from 0.042 s at 24 fps.
    const input = path.join(dir, 'offset.mkv');
    // prettier-ignore
    await ffmpeg([
      '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=24', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=5',
      '-frames:v', '119', '-vf', 'setpts=PTS+0.042/TB', ...X264, '-pix_fmt', 'yuv420p', '-c:a', 'pcm_s16le', input,
    ]);
    const sourcePts = await framePtsSeconds(input);
    expect(sourcePts).toHaveLength(119);
    expect(sourcePts[0]).toBeCloseTo(0.042, 3);
    const { report, masks, annotated } = await readOutputs(await run(input, 'offset'));

    expect(report.frames).toBe(119);
    expect(masks).toHaveLength(119);
    masks.forEach((line, i) => expect(Math.abs(line.timestampMs - sourcePts[i]! * 1000)).toBeLessThanOrEqual(1));
    const outputPts = await framePtsSeconds(annotated);
    expect(outputPts).toHaveLength(119);
    outputPts.forEach((t, i) => expect(Math.abs(t - sourcePts[i]!)).toBeLessThanOrEqual(0.002));
    const audio = (await probeStreams(annotated)).find((s) => s.codec_type === 'audio');
    expect(audio).toMatchObject({ codec_name: 'aac' });
    expect(Number(audio!.start_time)).toBeCloseTo(0, 2);
    expect(report.output.video?.startMs).toBeCloseTo(42, 0);
  });

  it('stdin: `cat moov-at-end.mp4 | streamseg run -` is spooled and processed as a file, within seconds', async () => {
    // ffmpeg's default MP4 (no +faststart): the moov index comes after the media data.
    const input = path.join(dir, 'moov-at-end.mp4');
    await ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=160x120:rate=10:duration=3',
      '-f',
      'lavfi',
      '-i',
      'sine=duration=3',
      ...X264,
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      input,
    ]);
    const boxes = await topLevelBoxes(input);
    expect(boxes.indexOf('moov')).toBeGreaterThan(boxes.indexOf('mdat'));
    const outDir = path.join(dir, 'stdin');
    const started = Date.now();
    const result = await new Promise<CliResult>((resolve, reject) => {
      // Its own process group, so the time limit takes cat, bash and streamseg down together
      // (SIGTERM first: streamseg then stops its own redis-server).
      const child = spawn('bash', ['-c', 'cat "$1" | "$2" --import tsx "$3" run - --out "$4"', 'bash', input, process.execPath, MAIN, outDir], {
        cwd: REPO_ROOT,
        env: { ...process.env, ...ENV },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const stop = (signal: NodeJS.Signals) => () => {
        try {
          process.kill(-child.pid!, signal);
        } catch {
          // already gone
        }
      };
      const timers = [setTimeout(stop('SIGTERM'), 60_000), setTimeout(stop('SIGKILL'), 75_000)];
      child.once('error', reject);
      child.once('close', (code) => {
        timers.forEach(clearTimeout);
        resolve({ code, stdout, stderr });
      });
    });
    expect(Date.now() - started, 'stopped after 60 s').toBeLessThan(60_000);
    expectCleanRun(result, outDir);
    // As a file: every frame (a live source read at its own rate may drop some), audio kept.
    const { report, masks, annotated } = await readOutputs(outDir);
    expect(report.frames).toBe(30);
    expect(masks.map((m) => m.index)).toEqual([...Array(30).keys()]);
    expect((await probeStreams(annotated)).map((s) => s.codec_type).sort()).toEqual(['audio', 'video']);
  });

  it('recognises MP4/MOV heads and finds moof boxes of a fragmented MP4 across chunk borders', async () => {
    const fragmented = path.join(dir, 'fragmented.mp4');
    await ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=64x48:rate=10:duration=1',
      ...X264,
      '-pix_fmt',
      'yuv420p',
      '-movflags',
      'frag_keyframe+empty_moov',
      fragmented,
    ]);
    const boxes = await topLevelBoxes(fragmented);
    expect(boxes.slice(0, 3)).toEqual(['ftyp', 'moov', 'moof']);
    const bytes = await readFile(fragmented);
    expect(looksLikeIsoBmff(bytes)).toBe(true);
    // One byte at a time: headers split over every possible border.
    const scanner = new IsoBmffBoxScanner();
    const seen: string[] = [];
    for (let i = 0; i < bytes.length; i++) seen.push(...scanner.push(bytes.subarray(i, i + 1)));
    expect(seen).toEqual(boxes);
    expect(looksLikeIsoBmff(Buffer.from([0x47, 0x40, 0x11, 0x10, 0, 0x42, 0xf0, 0x25, 0, 1, 0xc1, 0]))).toBe(false);
  });

  it('rotation metadata: a phone video rotated 90° comes out upright, its masks at the upright size', async () => {
    const input = path.join(dir, 'rotated.mp4');
    // The rotation goes into the display matrix when the stream is copied (as a phone records it: pixels landscape).
    const landscape = path.join(dir, 'landscape.mp4');
    await ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=10:duration=1', ...X264, '-pix_fmt', 'yuv420p', landscape]);
    await ffmpeg(['-i', landscape, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', input]);
    expect((await videoStream(input)).side_data_list?.some((d) => Math.abs(d.rotation ?? 0) === 90)).toBe(true);
    const { report, masks, annotated } = await readOutputs(await run(input, 'rotated'));
    const out = await videoStream(annotated);
    // The pixels are turned (ffmpeg rotates on decode) and no rotation is left to apply twice.
    expect(out).toMatchObject({ width: 240, height: 320 });
    expect(out.side_data_list?.some((d) => (d.rotation ?? 0) !== 0) ?? false).toBe(false);
    expect(report.source).toMatchObject({ width: 240, height: 320 });
    for (const line of masks) expect(line.size).toEqual([320, 240]);
    // And the picture matches the source as a player shows it (rotation applied).
    // (RGB, not gray: luma itself differs between the source's BT.601 and the output's BT.709.)
    const shown = await decodeRaw(input, 'rgb24');
    const written = await decodeRaw(annotated, 'rgb24');
    expect(meanAbsDiff(shown, written)).toBeLessThan(6);
  });

  it('10-bit HEVC (yuv420p10le) comes out as 8-bit yuv420p H.264 with every frame', async () => {
    const input = path.join(dir, 'hevc10.mkv');
    // prettier-ignore
    await ffmpeg([
      '-f', 'lavfi', '-i', 'testsrc2=size=192x144:rate=10:duration=1.5',
      '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-pix_fmt', 'yuv420p10le', input,
    ]);
    expect(await videoStream(input)).toMatchObject({ codec_name: 'hevc', pix_fmt: 'yuv420p10le' });
    const { report, annotated } = await readOutputs(await run(input, 'hevc10'));
    expect(report.frames).toBe(15);
    expect(await videoStream(annotated)).toMatchObject({ codec_name: 'h264', pix_fmt: 'yuv420p', nb_read_frames: '15' });
    expect(meanAbsDiff(await decodeRaw(input, 'rgb24'), await decodeRaw(annotated, 'rgb24'))).toBeLessThan(6);
  });

  it('interlaced input is deinterlaced: no combing in annotated.mp4, same frame count', async () => {
    // 50 fields/s of a scrolling picture woven into 25 top-field-first frames: every moving edge combs.
    const input = path.join(dir, 'interlaced.mp4');
    // prettier-ignore
    await ffmpeg([
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=50:duration=1.6,scroll=horizontal=0.02',
      '-vf', 'tinterlace=mode=interleave_top,fieldorder=tff', ...X264, '-flags', '+ilme+ildct', '-x264opts', 'tff=1', '-pix_fmt', 'yuv420p', input,
    ]);
    const source = await videoStream(input);
    expect(source as unknown).toMatchObject({ field_order: 'tt', nb_read_frames: '40' });
    const { report, annotated } = await readOutputs(await run(input, 'interlaced'));
    expect(report.frames).toBe(40);
    const before = combing(await decodeRaw(input, 'gray'), 320, 240);
    const after = combing(await decodeRaw(annotated, 'gray'), 320, 240);
    expect(before).toBeGreaterThan(8);
    expect(after).toBeLessThan(before / 4);
  });

  it('a video stream that is not the first stream (audio first) is found, and the audio kept', async () => {
    const input = path.join(dir, 'audio-first.mp4');
    // prettier-ignore
    await ffmpeg([
      '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10:duration=1.5', '-f', 'lavfi', '-i', 'sine=duration=1.5',
      '-map', '1:a', '-map', '0:v', ...X264, '-pix_fmt', 'yuv420p', '-c:a', 'aac', input,
    ]);
    expect((await probeStreams(input)).map((s) => s.codec_type)).toEqual(['audio', 'video']);
    const { report, annotated } = await readOutputs(await run(input, 'audio-first'));
    expect(report.frames).toBe(15);
    expect(await videoStream(annotated)).toMatchObject({ width: 160, height: 120, nb_read_frames: '15' });
    expect(report.output.audio).toEqual({ action: 'copy', codec: 'aac' });
  });

  it.each([
    { matrix: 'BT.601', tags: ['-colorspace', 'smpte170m', '-color_primaries', 'smpte170m', '-color_trc', 'smpte170m', '-color_range', 'tv'], scale: 'bt601' },
    { matrix: 'BT.709', tags: ['-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv'], scale: 'bt709' },
    // No tags at all, as many encoders write: players and ffmpeg read it as BT.601.
    { matrix: 'untagged', tags: [], scale: 'bt601' },
  ])('colour matrix $matrix: annotated.mp4 is BT.709-tagged and its colours match the source', async ({ matrix, tags, scale }) => {
    const input = path.join(dir, `colour-${matrix}.mp4`);
    // Saturated bars, where a matrix mix-up shifts colours by 10+ levels.
    // prettier-ignore
    await ffmpeg([
      '-f', 'lavfi', '-i', 'smptehdbars=size=320x180:rate=10:duration=1',
      '-vf', `scale=out_color_matrix=${scale}:out_range=tv,format=yuv420p`, ...tags, ...X264, '-qp', '0', input,
    ]);
    expect((await videoStream(input)).color_space, matrix).toBe(tags.length > 0 ? tags[1] : undefined);
    const { annotated } = await readOutputs(await run(input, `colour-${matrix}`));
    expect(await videoStream(annotated)).toMatchObject({ color_space: 'bt709', pix_fmt: 'yuv420p' });
    const source = await decodeRaw(input, 'rgb24');
    const written = await decodeRaw(annotated, 'rgb24');
    expect(written.length, matrix).toBe(source.length);
    // 0.28 (BT.709) and 0.37 (BT.601, untagged) levels here; swscale's BT.601 → BT.709 gave 2.0.
    expect(meanAbsDiff(source, written), matrix).toBeLessThan(1);
  });

  it.each([
    // Flat colours that stay inside BT.709 after tone mapping (nothing clips), where reading the
    // HDR signal as SDR is off by 15-40 levels on some channel.
    { name: 'PQ', trc: 'smpte2084', colour: '0x807060' },
    { name: 'HLG', trc: 'arib-std-b67', colour: '0xA07060' },
  ])('HDR ($name, BT.2020, 10-bit HEVC) is tone-mapped to SDR BT.709, and report.json says so', async ({ name, trc, colour }) => {
    const input = path.join(dir, `hdr-${trc}.mkv`);
    // prettier-ignore
    await ffmpeg([
      '-f', 'lavfi', '-i', `color=c=${colour}:size=192x144:rate=10:duration=1.5`,
      '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-pix_fmt', 'yuv420p10le',
      '-color_primaries', 'bt2020', '-color_trc', trc, '-colorspace', 'bt2020nc', '-color_range', 'tv', input,
    ]);
    expect(await videoStream(input)).toMatchObject({ codec_name: 'hevc', pix_fmt: 'yuv420p10le', color_transfer: trc, color_primaries: 'bt2020' });
    const { report, annotated } = await readOutputs(await run(input, `hdr-${trc}`));
    expect(report.frames).toBe(15);
    expect(await videoStream(annotated)).toMatchObject({ pix_fmt: 'yuv420p', color_space: 'bt709', nb_read_frames: '15' });
    // ffmpeg's own SDR rendering of the input (zscale reads the frames' colour tags), and the
    // same frames read as if they were SDR (what a decoder without tone mapping hands on).
    const toneMapped = meanRgb(
      await decodeRaw(input, 'rgb24', 'zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=hable:desat=0,zscale=t=bt709,format=gbrp'),
    );
    const untouched = meanRgb(await decodeRaw(input, 'rgb24'));
    const written = meanRgb(await decodeRaw(annotated, 'rgb24'));
    expect(maxChannelDiff(toneMapped, untouched), 'the input tells tone-mapped from untouched apart').toBeGreaterThan(15);
    expect(maxChannelDiff(written, toneMapped), `annotated.mp4 ${written.join(',')} vs tone-mapped ${toneMapped.join(',')}`).toBeLessThan(3);
    expect(maxChannelDiff(written, untouched), `annotated.mp4 ${written.join(',')} vs untouched ${untouched.join(',')}`).toBeGreaterThan(12);
    expect(report.warnings).toContainEqual(expect.stringContaining(`HDR (${name}) input tone-mapped to SDR BT.709`));
  });
});

describe('the audio option', () => {
  it("--no-audio and the API's audio=false (JSON or multipart) ask for the same thing; unset keeps the audio", () => {
    expect(videoOptionsFromFlags({ adapters: true, audio: false })).toEqual({ classes: undefined, audio: false });
    expect(videoOptionsFromFlags({ adapters: true, audio: true })).toEqual({ classes: undefined });
    expect(resolveVideoOptions({ audio: false })).toEqual({ classes: undefined, audio: false });
    expect(resolveVideoOptions({ audio: 'false' })).toEqual({ classes: undefined, audio: false });
    expect(resolveVideoOptions({ audio: true })).toEqual({ classes: undefined });
    // A submission that keeps its audio hashes as before the option existed (dedup keys stay valid).
    const url = { url: 'https://example.com/a.mp4' };
    expect(submissionHash(url, resolveVideoOptions({ audio: true }))).toBe(submissionHash(url, {}));
    expect(submissionHash(url, resolveVideoOptions({ audio: false }))).not.toBe(submissionHash(url, {}));
  });
});

/** Mean absolute difference of two equally long byte buffers. */
function meanAbsDiff(a: Buffer, b: Buffer): number {
  expect(b.length).toBe(a.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/** Mean R, G and B of packed RGB24 frames. */
function meanRgb(rgb: Buffer): [number, number, number] {
  const sums = [0, 0, 0];
  for (let i = 0; i < rgb.length; i++) sums[i % 3]! += rgb[i]!;
  const pixels = rgb.length / 3;
  return [sums[0]! / pixels, sums[1]! / pixels, sums[2]! / pixels];
}

/** Largest per-channel difference of two mean colours. */
function maxChannelDiff(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
}

/** How far each odd row sits from the mean of its neighbours, averaged: high where fields are combed. */
function combing(gray: Buffer, width: number, height: number): number {
  const frames = gray.length / (width * height);
  let sum = 0;
  let count = 0;
  for (let f = 0; f < frames; f++) {
    const base = f * width * height;
    for (let y = 1; y < height - 1; y += 2) {
      for (let x = 0; x < width; x++) {
        const above = gray[base + (y - 1) * width + x]!;
        const below = gray[base + (y + 1) * width + x]!;
        sum += Math.abs(gray[base + y * width + x]! - (above + below) / 2);
        count++;
      }
    }
  }
  return sum / count;
}
