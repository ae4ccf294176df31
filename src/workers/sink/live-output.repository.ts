import path from 'node:path';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { LIVE_PLAYLIST } from '../../shared/output-layout.js';
import { RawFrameFfmpeg } from '../../shared/media/raw-frame-ffmpeg.js';

export interface LiveOutputOptions {
  /** Directory of the rolling playlist (`index.m3u8`) and its segments. */
  dir: string;
  width: number;
  height: number;
  fps: number;
  /** Segments kept in the playlist (older ones are deleted). @defaultValue 6 */
  listSize?: number;
  /** Also publish the annotated stream here: rtsp:// (to a server) or udp:// (MPEG-TS). */
  restreamUrl?: string;
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
}

/** What the live sink needs of its output (LiveOutputRepository in production). */
export interface LiveOutput {
  readonly playlist: string;
  write(frame: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/** Segment length of the live playlist, seconds; keyframes are forced on this grid. */
const HLS_TIME = 1;

/**
 * ffmpeg arguments: raw RGB24 on stdin → H.264 (ultrafast, zerolatency, a keyframe every
 * second so every 1 s segment starts with one) → low-latency HLS with a rolling playlist, and
 * with `restreamUrl`, the same encoded stream to an RTSP server or a UDP address as well (tee
 * muxer: one encode; a restream target that fails is ignored, the HLS output goes on).
 */
export function liveOutputArgs(options: LiveOutputOptions): string[] {
  const playlist = path.join(options.dir, LIVE_PLAYLIST);
  const gop = String(Math.max(1, Math.round(options.fps * HLS_TIME)));
  const listSize = String(options.listSize ?? 6);
  // append_list: a sink that takes the video over (the first one died) continues the playlist
  // it finds (numbering goes on, a discontinuity marks the restart) instead of replacing it
  // under players that are following it.
  const hlsFlags = 'delete_segments+independent_segments+append_list';
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${options.width}x${options.height}`, '-framerate', String(options.fps),
    '-i', 'pipe:0',
    '-map', '0:v', '-an',
    // yuv420p (what HLS players decode) needs even sizes: pad an odd edge by one pixel.
    '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
    '-g', gop, '-keyint_min', gop, '-sc_threshold', '0', '-force_key_frames', `expr:gte(t,n_forced*${HLS_TIME})`,
    '-flush_packets', '1',
  ];
  if (!options.restreamUrl) {
    // prettier-ignore
    return [
      ...args,
      '-f', 'hls', '-hls_time', String(HLS_TIME), '-hls_list_size', listSize, '-hls_flags', hlsFlags,
      playlist,
    ];
  }
  for (const [what, value] of [
    ['output directory', playlist],
    ['restream URL', options.restreamUrl],
  ] as const) {
    // The tee muxer splits on these characters; such names are refused rather than half-escaped.
    if (/[|[\]\\']/.test(value))
      throw new StreamsegError(ErrorCode.LIVE_OUTPUT, `${what} ${value} holds one of | [ ] \\ ' which the live outputs cannot carry`);
  }
  const restream = /^rtsp:/i.test(options.restreamUrl)
    ? `[f=rtsp:rtsp_transport=tcp:onfail=ignore]${options.restreamUrl}`
    : `[f=mpegts:onfail=ignore]${options.restreamUrl}`;
  const hls = `[f=hls:hls_time=${HLS_TIME}:hls_list_size=${listSize}:hls_flags=${hlsFlags}]${playlist}`;
  return [...args, '-f', 'tee', `${hls}|${restream}`];
}

/**
 * One ffmpeg process serving a live video's outputs. `finish` closes stdin and waits (the
 * playlist gets its ENDLIST); `abort` kills it.
 */
export class LiveOutputRepository implements LiveOutput {
  readonly playlist: string;
  private readonly ffmpeg: RawFrameFfmpeg;
  private finished?: Promise<void>;

  constructor(options: LiveOutputOptions) {
    this.playlist = path.join(options.dir, LIVE_PLAYLIST);
    this.ffmpeg = new RawFrameFfmpeg({
      args: liveOutputArgs(options),
      width: options.width,
      height: options.height,
      describe: `writing the live outputs of ${options.dir}`,
      ffmpegPath: options.ffmpegPath,
    });
  }

  write(frame: Uint8Array): Promise<void> {
    return this.ffmpeg.write(frame);
  }

  finish(): Promise<void> {
    return (this.finished ??= this.ffmpeg.end());
  }

  abort(): Promise<void> {
    return this.ffmpeg.kill();
  }
}
