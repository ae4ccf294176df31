import { RawFrameFfmpeg } from '../shared/media/raw-frame-ffmpeg.js';

export interface EncoderOptions {
  out: string;
  width: number;
  height: number;
  fps: number;
  /** An ffmpeg video filter applied while encoding (e.g. an evaluation's unseen style). */
  filter?: string;
}

/**
 * Encodes raw RGB frames to H.264 yuv420p with a keyframe every second, through the shared
 * raw-frame ffmpeg pipe (spawned with an argument array, never a shell). `write` honours pipe
 * backpressure, so memory stays flat however long the video.
 */
export class RawVideoEncoder {
  private readonly ffmpeg: RawFrameFfmpeg;

  constructor(opts: EncoderOptions) {
    const gop = String(Math.max(1, Math.round(opts.fps)));
    // prettier-ignore
    const args = [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${opts.width}x${opts.height}`, '-r', String(opts.fps), '-i', '-',
      ...(opts.filter ? ['-vf', opts.filter] : []),
      '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'veryfast', '-crf', '18', '-g', gop,
      '-movflags', '+faststart', opts.out,
    ];
    this.ffmpeg = new RawFrameFfmpeg({ args, width: opts.width, height: opts.height, describe: `encoding ${opts.out}` });
  }

  write(rgb: Uint8Array): Promise<void> {
    return this.ffmpeg.write(rgb);
  }

  finish(): Promise<void> {
    return this.ffmpeg.end();
  }

  /** Stops ffmpeg after a failure elsewhere; the partial output is left to the caller. */
  abort(): void {
    void this.ffmpeg.kill();
  }
}
