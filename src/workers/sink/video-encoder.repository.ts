import { rename, rm } from 'node:fs/promises';
import type { StreamsegConfig } from '../../shared/config.js';
import { RawFrameFfmpeg } from './raw-frame-ffmpeg.js';

export type EncoderPreset = StreamsegConfig['encoderPreset'];

export interface VideoEncoderOptions {
  /** Final path; frames go to `<file>.partial` until `finish()` renames it. */
  file: string;
  width: number;
  height: number;
  fps: number;
  /** x264 preset (STREAMSEG_ENCODER_PRESET). @defaultValue `superfast` */
  preset?: EncoderPreset;
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
}

/**
 * ffmpeg arguments for raw RGB24 on stdin → H.264 MP4. yuv420p (what every player decodes)
 * needs even sizes; an odd width or height keeps its exact size with yuv444p instead of
 * being scaled or cropped.
 */
export function encoderArgs(options: Pick<VideoEncoderOptions, 'width' | 'height' | 'fps' | 'preset'>, output: string): string[] {
  const even = options.width % 2 === 0 && options.height % 2 === 0;
  return [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${options.width}x${options.height}`, '-framerate', String(options.fps),
    '-i', 'pipe:0',
    '-an',
    '-c:v', 'libx264', '-preset', options.preset ?? 'superfast', '-crf', '20',
    '-pix_fmt', even ? 'yuv420p' : 'yuv444p',
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
      describe: `encoding ${options.file}`,
      ffmpegPath: options.ffmpegPath,
    });
  }

  /** Writes one RGB24 frame; resolves once ffmpeg has room for the next. */
  write(frame: Uint8Array): Promise<void> {
    return this.ffmpeg.write(frame);
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
