import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, FfmpegError, InputError } from '../shared/errors/index.js';
import type { VideoInput } from '../shared/job-schemas.js';
import { assertDecodable, readProbe, type FfprobeOutput, type VideoProbe } from './probe-validation.js';
import { rawDecodeArgs, type HdrSignal, type SourceColour } from '../shared/media/raw-video-decode.js';
import type { ModelInputPlan } from '../shared/model-input-plan.js';
import { rawFrameBytes, type RawPixelFormat } from '../shared/media/raw-pixel-format.js';
import { UrlDestinationPolicy } from '../shared/url-policy.js';
import { EgressProxy } from './egress-proxy.js';
import { runMedia, startFrameReader, startMediaReader } from '../shared/media/media-process.js';
import { StderrTail, exitOf, missingBinary, missingFilter } from '../shared/media/media-child.js';

export type { VideoProbe } from './probe-validation.js';

/**
 * Protocols ffmpeg may open for a URL input. Without a whitelist a crafted playlist could make it
 * reach other protocols on the producer's behalf; `file` is left out on purpose, or a remote HLS
 * playlist listing `file:///…/secret.ts` would make the producer read (and segment) a local file.
 */
export const URL_PROTOCOL_WHITELIST = 'http,https,tcp,tls,rtp,rtsp,udp,crypto';
/** Protocols ffmpeg may open for a local file input: the file itself, nothing it points to on the network. */
export const FILE_PROTOCOL_WHITELIST = 'file';

/** One decoded frame: raw RGB24 at source size (or the model's input size), row-major, no padding. */
export interface DecodedFrame {
  index: number;
  /** startMs + index × 1000 / fps: frames come out at a constant rate, from the source's first frame on. */
  timestampMs: number;
  /** Reused between frames: valid until the next frame is requested. */
  data: Buffer;
  /** With `sourceOutput`: the frame at source size as the sink decodes it (reused likewise). */
  source?: Buffer;
}

export interface DecodeOptions {
  /** Output frame rate; variable-rate sources become constant-rate at this rate. */
  fps: number;
  /** Frame size from the probe (after rotation); every frame is exactly width × height × 3 bytes. */
  width: number;
  height: number;
  /** ffmpeg stream index of the video stream (probe.streamIndex). @defaultValue first video stream */
  streamIndex?: number;
  /**
   * Presentation time of the source's first frame (probe.startMs): timestamps start there, so a
   * video whose first frame is at 0.042 s is not shifted to 0. @defaultValue 0
   */
  startMs?: number;
  /** Aborting kills ffmpeg and makes the iteration throw the signal's reason. */
  signal?: AbortSignal;
  /**
   * Frames come out as this model input instead of at source size: scaled and letterboxed by
   * ffmpeg (rawDecodeArgs), width × height × 3 bytes of the plan each.
   */
  modelInput?: ModelInputPlan;
  /**
   * Also hand out each frame at source size, exactly as the sink's own decode of the file makes
   * it (`source`), from the same decode: see SourceFrameHandoff.
   */
  sourceOutput?: { pixelFormat: RawPixelFormat; colour?: SourceColour };
  /** The stream is HDR (probe.hdr): frames are tone-mapped to SDR BT.709 (see hdrToSdrFilter in shared/media/raw-video-decode.ts). */
  hdr?: HdrSignal;
  /**
   * Called once at the end when ffmpeg decoded the stream but reported errors on the way (a
   * corrupted or truncated file: damaged frames are concealed, missing ones are not produced).
   */
  onDecodeErrors?: (report: { errorLines: number; firstLine: string }) => void;
}

export interface FfmpegRepositoryOptions {
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
  /** @defaultValue `ffprobe` from PATH */
  ffprobePath?: string;
  /** ffprobe is killed after this long (a dead URL must not hang the producer). @defaultValue 60000 */
  probeTimeoutMs?: number;
  /** Where URLs submitted through the API (`restricted`) may lead. @defaultValue public unicast only, nothing allowed beyond */
  urlPolicy?: UrlDestinationPolicy;
}

/** How a child process reaches the network for one input: the egress proxy of a restricted URL, or nothing special. */
interface Egress {
  protocols: string;
  env?: NodeJS.ProcessEnv;
  proxy?: EgressProxy;
}

/** How ffmpeg is told to read an input, and how messages name it. */
interface Source {
  locator: string;
  name: string;
  isFile: boolean;
  /** `-protocol_whitelist` for this input. */
  protocols: string;
}

function sourceOf(input: VideoInput): Source {
  if (input.kind === 'url') return { locator: input.url, name: input.url, isFile: false, protocols: URL_PROTOCOL_WHITELIST };
  // `file:` plus an absolute path: a name starting with "-" or holding ":" is never read as an option or a protocol.
  return { locator: `file:${path.resolve(input.path)}`, name: input.path, isFile: true, protocols: FILE_PROTOCOL_WHITELIST };
}

/** The only place streamseg runs ffprobe and ffmpeg; argument arrays only, never a shell. */
export class FfmpegRepository {
  private readonly ffmpegPath: string;
  private readonly ffprobePath: string;
  private readonly probeTimeoutMs: number;
  private readonly urlPolicy: UrlDestinationPolicy;
  private rawInterleaving?: Promise<boolean>;

  constructor(options: FfmpegRepositoryOptions = {}) {
    this.ffmpegPath = options.ffmpegPath ?? 'ffmpeg';
    this.ffprobePath = options.ffprobePath ?? 'ffprobe';
    this.probeTimeoutMs = options.probeTimeoutMs ?? 60_000;
    this.urlPolicy = options.urlPolicy ?? new UrlDestinationPolicy();
  }

  /**
   * A URL submitted through the API is checked against the destination policy again (its name may
   * resolve elsewhere by now), and its HTTP(S) connections go through an egress proxy that checks
   * every one of them (redirects, playlist segments). Other inputs are opened as they are.
   */
  private async egress(input: VideoInput, source: Source): Promise<Egress> {
    if (input.kind !== 'url' || !input.restricted) return { protocols: source.protocols };
    const url = new URL(input.url);
    await this.urlPolicy.check(url, source.name);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { protocols: source.protocols };
    const proxy = await EgressProxy.start(this.urlPolicy, source.name);
    return { protocols: `${source.protocols},httpproxy`, env: proxy.env(), proxy };
  }

  /**
   * Probes and refuses what cannot be decoded: E_INPUT_NOT_FOUND, E_INPUT_NOT_VIDEO,
   * E_INPUT_NO_VIDEO_STREAM, E_INPUT_EMPTY, E_INPUT_DIMENSIONS. With `fps` (a requested
   * output rate) a missing or odd source rate is accepted.
   */
  async probe(input: VideoInput, options: { fps?: number } = {}): Promise<VideoProbe> {
    const probe = await this.inspect(input);
    const source = sourceOf(input);
    assertDecodable(probe, source.name, { requestedFps: options.fps, isFile: source.isFile });
    return probe;
  }

  /** Probes without judging: an audio-only file comes back with `hasVideo: false`. */
  async inspect(input: VideoInput): Promise<VideoProbe> {
    const source = sourceOf(input);
    if (source.isFile) {
      const info = await stat(source.locator.slice('file:'.length)).catch(() => null);
      if (!info) throw new InputError(ErrorCode.INPUT_NOT_FOUND, `${source.name}: no such file on the producer's machine; check the path`);
      if (info.isDirectory()) throw new InputError(ErrorCode.INPUT_DIRECTORY, `${source.name}: is a directory on the producer's machine, not a video file`);
      if (!info.isFile()) throw new InputError(ErrorCode.INPUT_NOT_FILE, `${source.name}: not a regular file on the producer's machine`);
    }
    const egress = await this.egress(input, source);
    // prettier-ignore
    const args = [
      '-v', 'error',
      '-protocol_whitelist', egress.protocols,
      '-print_format', 'json',
      '-show_format', '-show_streams',
      source.locator,
    ];
    const probed = await this.collect(this.ffprobePath, args, this.probeTimeoutMs, egress.env).finally(() => egress.proxy?.close());
    if (egress.proxy?.refusal) throw egress.proxy.refusal;
    const { code, stdout, spawnError, timedOut } = probed;
    // ffprobe prefixes its complaint with the locator; the message names the input already. The
    // first line is often the cause ("Picture size 100000x100000 is invalid"), the last the effect.
    const lines = [
      ...new Set(
        [probed.stderrFirstLine, probed.stderrLine].map((l) => l.replace(`${source.locator}: `, '').replace(/^\[[^\]]* @ 0x[0-9a-f]+\] /, '')).filter(Boolean),
      ),
    ];
    const stderrLine = lines.join('; ');
    if (spawnError) throw missingBinary(this.ffprobePath, spawnError);
    if (timedOut) {
      throw new FfmpegError(`${source.name}: ffprobe gave no answer within ${this.probeTimeoutMs / 1000} s; check the source is reachable`);
    }
    if (code !== 0) {
      // A file ffprobe cannot parse will never parse; a URL may just be down for now.
      if (source.isFile || /invalid data/i.test(stderrLine)) {
        throw new InputError(
          ErrorCode.INPUT_NOT_VIDEO,
          `${source.name}: not a video ffprobe can read (${stderrLine || `exit code ${code}`}); give a video file such as .mp4, .mkv, .webm or .mov`,
        );
      }
      throw new FfmpegError(`${source.name}: ffprobe cannot open it: ${stderrLine || `exit code ${code}`}`);
    }
    let output: FfprobeOutput;
    try {
      output = JSON.parse(stdout) as FfprobeOutput;
    } catch (cause) {
      throw new FfmpegError(`${source.name}: ffprobe printed something other than JSON`, { cause });
    }
    return readProbe(output);
  }

  /**
   * Whether this ffmpeg muxes two video streams into one rawvideo output, as `sourceOutput`
   * needs: 5.1 does, and a build whose rawvideo muxer takes one stream only would fail the decode
   * at its start. Asked once, with a 2-frame synthetic video.
   */
  interleavesRawStreams(): Promise<boolean> {
    // prettier-ignore
    this.rawInterleaving ??= runMedia(this.ffmpegPath, [
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      '-f', 'lavfi', '-i', 'color=size=16x16:rate=10:duration=0.2',
      '-filter_complex', '[0:v]split[a][b]', '-map', '[a]', '-map', '[b]',
      '-c:v', 'rawvideo', '-pix_fmt:v:0', 'yuv420p', '-pix_fmt:v:1', 'rgb24', '-f', 'rawvideo', 'pipe:1',
    ]).then((run) => run.code === 0);
    return this.rawInterleaving;
  }

  /**
   * Decodes the video stream to raw RGB24 frames at source size and a constant frame rate.
   * Stopping early (break, return(), or the signal) kills ffmpeg: no process outlives the
   * iteration. Errors quote ffmpeg's last stderr line.
   */
  async *decodeFrames(input: VideoInput, options: DecodeOptions): AsyncGenerator<DecodedFrame, number, undefined> {
    const source = sourceOf(input);
    const { fps, width, height, signal } = options;
    if (!(fps > 0) || !(width > 0) || !(height > 0)) {
      throw new RangeError(`decodeFrames needs positive fps, width and height (got ${fps}, ${width}x${height})`);
    }
    signal?.throwIfAborted();
    const egress = await this.egress(input, source);
    const args = rawDecodeArgs({
      locator: source.locator,
      protocols: egress.protocols,
      streamIndex: options.streamIndex,
      width,
      height,
      fps,
      hdr: options.hdr,
      ...(options.modelInput ? { modelInput: options.modelInput } : {}),
      ...(options.sourceOutput ? { sourceOutput: { pixelFormat: options.sourceOutput.pixelFormat }, colour: options.sourceOutput.colour } : {}),
    });
    const frameSize = options.modelInput ?? { width, height };
    const frameBytes = rawFrameBytes(frameSize.width, frameSize.height, 'rgb24');
    const reader = await startFrameReader(this.ffmpegPath, args, egress.env);
    const { child } = reader;
    const stderr = new StderrTail(child);
    const exit = exitOf(child);
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', kill, { once: true });
    const startMs = options.startMs ?? 0;
    let index = 0;
    try {
      // With a source output, each read is the source-size frame followed by this one (rawDecodeArgs).
      const sourceBytes = options.sourceOutput ? rawFrameBytes(width, height, options.sourceOutput.pixelFormat) : 0;
      for await (const both of reader.frames(sourceBytes + frameBytes, source.name)) {
        const data = sourceBytes > 0 ? both.subarray(sourceBytes) : both;
        yield { index, timestampMs: startMs + (index * 1000) / fps, data, ...(sourceBytes > 0 ? { source: both.subarray(0, sourceBytes) } : {}) };
        index++;
      }
      const { code, spawnError } = await exit;
      signal?.throwIfAborted();
      if (spawnError) throw missingBinary(this.ffmpegPath, spawnError);
      if (egress.proxy?.refusal) throw egress.proxy.refusal;
      if (code !== 0) {
        const filter = stderr.missingFilter();
        if (filter) throw missingFilter(this.ffmpegPath, filter);
        throw new InputError(ErrorCode.INPUT_DECODE, `${source.name}: ffmpeg failed after ${index} frames: ${stderr.lastLine() || `exit code ${code}`}`);
      }
      if (index === 0) {
        throw new InputError(ErrorCode.INPUT_EMPTY, `${source.name}: decoding produced no frames; check the file was written completely`);
      }
      if (stderr.lines > 0) options.onDecodeErrors?.({ errorLines: stderr.lines, firstLine: stderr.firstLine() });
      return index;
    } catch (error) {
      signal?.throwIfAborted();
      const { spawnError } = await Promise.race([exit, Promise.resolve({ spawnError: undefined })]);
      if (spawnError) throw missingBinary(this.ffmpegPath, spawnError);
      if (egress.proxy?.refusal) throw egress.proxy.refusal;
      if (error instanceof InputError || error instanceof FfmpegError) throw error;
      throw new FfmpegError(`${source.name}: reading ffmpeg's output failed after ${index} frames: ${stderr.lastLine() || String(error)}`, {
        cause: error,
      });
    } finally {
      signal?.removeEventListener('abort', kill);
      kill();
      reader.close();
      await exit;
      await egress.proxy?.close();
    }
  }

  /** Runs a short-lived tool to completion and keeps its stdout and last stderr line. */
  private collect(
    command: string,
    args: string[],
    timeoutMs: number,
    env?: NodeJS.ProcessEnv,
  ): Promise<{ code: number | null; stdout: string; stderrLine: string; stderrFirstLine: string; spawnError?: Error; timedOut: boolean }> {
    const child = startMediaReader(command, args, env);
    const stderr = new StderrTail(child);
    const chunks: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    return exitOf(child).then(({ code, spawnError }) => {
      clearTimeout(timer);
      return { code, stdout: Buffer.concat(chunks).toString('utf8'), stderrLine: stderr.lastLine(), stderrFirstLine: stderr.firstLine(), spawnError, timedOut };
    });
  }
}
