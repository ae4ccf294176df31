import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestVideoSpec {
  width: number;
  height: number;
  fps: number;
  /** Frames before and after the one hard cut (testsrc2 → mandelbrot). */
  framesPerScene: [number, number];
  /** ffmpeg video encoder and its extra arguments, e.g. ['libx264', '-pix_fmt', 'yuv420p']. */
  video: string[];
  audio?: boolean;
  /** Re-time frames irregularly so the container holds a variable frame rate. */
  variableFrameRate?: boolean;
}

/** The small H.264 clip the pipeline tests run: 96x54 at 10 fps, `frames` split over two scenes. */
export function smallClipSpec(frames: number): TestVideoSpec {
  return { width: 96, height: 54, fps: 10, framesPerScene: [frames / 2, frames / 2], video: ['libx264', '-pix_fmt', 'yuv420p'] };
}

/** Writes a two-scene test video with ffmpeg; the container follows the file extension. */
export async function makeTestVideo(file: string, spec: TestVideoSpec): Promise<void> {
  // lavfi test sources round odd sizes down to even; render even, then scale to the exact size.
  const size = `${spec.width + (spec.width % 2)}x${spec.height + (spec.height % 2)}`;
  const [a, b] = spec.framesPerScene;
  // prettier-ignore
  const inputs = [
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${spec.fps}:duration=${a / spec.fps}`,
    '-t', String(b / spec.fps), '-f', 'lavfi', '-i', `mandelbrot=size=${size}:rate=${spec.fps}`,
  ];
  if (spec.audio) inputs.push('-f', 'lavfi', '-i', `sine=frequency=440:duration=${(a + b) / spec.fps}`);
  const retime = spec.variableFrameRate
    ? // alternate short and long frame durations (0.5x and 1.5x) so the rate varies but the count does not;
      // settb first: in the 1/fps time base the half-frame offsets would round away
      `,settb=AVTB,setpts='(N*1.0+0.5*mod(N\\,2))/(${spec.fps}*TB)'`
    : '';
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    ...inputs,
    '-filter_complex', `[0:v][1:v]concat=n=2:v=1:a=0,scale=${spec.width}:${spec.height},setsar=1${retime}[v]`,
    '-map', '[v]',
    ...(spec.audio ? ['-map', '2:a', '-c:a', file.endsWith('.webm') || file.endsWith('.mkv') ? 'libopus' : 'aac'] : []),
    // A millisecond encoder time base: the default (1/fps) would round the irregular times back to a constant rate.
    ...(spec.variableFrameRate ? ['-fps_mode', 'vfr', '-enc_time_base', '1:1000'] : []),
    '-c:v', ...spec.video,
    file,
  ];
  await run('ffmpeg', args);
}

export interface ProbedVideo {
  codec: string;
  width: number;
  height: number;
  frames: number;
  fps: number;
  /** Pixel format as ffprobe names it (yuv420p, yuv444p…). */
  pixFmt: string;
}

/** Counts decoded frames exactly (ffprobe -count_frames) and reads size, codec, rate and pixel format. */
export async function probeVideo(file: string): Promise<ProbedVideo> {
  // prettier-ignore
  const { stdout } = await run('ffprobe', [
    '-v', 'error', '-select_streams', 'v:0', '-count_frames',
    '-show_entries', 'stream=codec_name,width,height,nb_read_frames,avg_frame_rate,pix_fmt',
    '-of', 'json', file,
  ]);
  const stream = (JSON.parse(stdout) as { streams: Record<string, string | number>[] }).streams[0]!;
  const [num, den] = String(stream.avg_frame_rate).split('/').map(Number);
  return {
    codec: String(stream.codec_name),
    width: Number(stream.width),
    height: Number(stream.height),
    frames: Number(stream.nb_read_frames),
    fps: den ? num! / den : num!,
    pixFmt: String(stream.pix_fmt),
  };
}
