import { rename, rm } from 'node:fs/promises';
import type { StreamsegConfig } from '../../shared/config.js';
import { BT709_TAGS, playerSafeFilter } from './player-safe-format.js';
import { RawFrameFfmpeg } from '../../shared/media/raw-frame-ffmpeg.js';
import type { RawPixelFormat } from '../../shared/media/raw-pixel-format.js';

export type EncoderPreset = StreamsegConfig['encoderPreset'];

export interface VideoEncoderOptions {
  /** Final path; frames go to `<file>.partial` until `finish()` renames it. */
  file: string;
  width: number;
  height: number;
  fps: number;
  /** Layout of the frames written (yuv420p needs an even size). @defaultValue `rgb24` */
  pixelFormat?: RawPixelFormat;
  /** x264 preset (STREAMSEG_ENCODER_PRESET). @defaultValue `superfast` */
  preset?: EncoderPreset;
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
}

/**
 * ffmpeg arguments for raw frames on stdin → H.264 MP4 that every player decodes: yuv420p,
 * BT.709 tagged, an odd width or height padded by one pixel (see playerSafeFilter). yuv420p
 * frames are taken as BT.709 limited range already (the sink's decode makes them so).
 */
export function encoderArgs(options: Pick<VideoEncoderOptions, 'width' | 'height' | 'fps' | 'preset' | 'pixelFormat'>, output: string): string[] {
  const pixelFormat = options.pixelFormat ?? 'rgb24';
  // prettier-ignore
  return [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'rawvideo', '-pix_fmt', pixelFormat,
    ...(pixelFormat === 'yuv420p' ? ['-colorspace', 'bt709', '-color_range', 'tv'] : []),
    '-s', `${options.width}x${options.height}`, '-framerate', String(options.fps),
    '-i', 'pipe:0',
    '-an',
    '-vf', playerSafeFilter(options.width, options.height),
    '-c:v', 'libx264', '-preset', options.preset ?? 'superfast', '-crf', '20',
    ...BT709_TAGS,
    '-movflags', '+faststart',
    // The output name ends in .partial: name the container explicitly.
    '-f', 'mp4',
    output,
  ];
}

/**
 * One ffmpeg process encoding one video (or one segment of it). `finish` closes stdin,
 * waits for a clean exit and renames the file into place; `abort` kills ffmpeg and removes
 * the partial file.
 */
export class VideoEncoderRepository {
  private readonly ffmpeg: RawFrameFfmpeg;
  private readonly partial: string;
  private finished?: Promise<void>;

  constructor(private readonly options: VideoEncoderOptions) {
    this.partial = `${options.file}.partial`;
    this.ffmpeg = new RawFrameFfmpeg({
      args: encoderArgs(options, this.partial),
      width: options.width,
      height: options.height,
      pixelFormat: options.pixelFormat,
      describe: `encoding ${options.file}`,
      ffmpegPath: options.ffmpegPath,
    });
  }

  /** Writes one frame in the encoder's pixel format; resolves once ffmpeg has room for the next (see RawFrameFfmpeg.write). */
  write(frame: Uint8Array, onFlushed?: () => void): Promise<void> {
    return this.ffmpeg.write(frame, onFlushed);
  }

  /** Ends the stream, waits for ffmpeg, moves the file into place. Idempotent. */
  finish(): Promise<void> {
    return (this.finished ??= (async () => {
      try {
        await this.ffmpeg.end();
      } catch (error) {
        await rm(this.partial, { force: true });
        throw error;
      }
      await rename(this.partial, this.options.file);
    })());
  }

  /** Kills ffmpeg and removes the partial file; safe at any time. */
  async abort(): Promise<void> {
    await this.ffmpeg.kill();
    await rm(this.partial, { force: true });
  }
}
