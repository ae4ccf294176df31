import { ErrorCode, InputError } from '../shared/errors/index.js';
import type { HdrSignal, SourceColour } from '../shared/media/raw-video-decode.js';

export type { HdrSignal } from '../shared/media/raw-video-decode.js';

/** The most pixels a side and frames per second a header may claim before we call it absurd. */
export const MAX_DIMENSION = 8192;
export const MAX_FPS = 240;

/** What the producer needs to know about a video before decoding it. */
export interface VideoProbe {
  /** Size of decoded frames, after the rotation ffmpeg applies on decode. */
  width: number;
  height: number;
  /** Average frame rate (avg_frame_rate, else r_frame_rate); NaN when the header has none. */
  fps: number;
  /** 0 when unknown (live streams). */
  durationMs: number;
  /** Frame count from the header, else duration × fps; for progress only. */
  frameCountEstimate: number;
  codec: string;
  /** False for audio-only media (only `FfmpegRepository.inspect` returns such a probe). */
  hasVideo: boolean;
  /** ffmpeg stream index of the video stream, for `-map 0:<index>`. */
  streamIndex: number;
  /** Container as ffprobe names it (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`…). */
  container: string;
  /**
   * Presentation time of the video stream's first frame, ms (its `start_time`; 0 when unknown
   * or negative). An MKV whose first frame is at 0.042 s says 42: frame timestamps start there.
   */
  startMs: number;
  /**
   * Start of the whole input, ms (the earliest stream's `start_time`, may be negative): ffmpeg
   * reads an input's timestamps relative to it, so muxing its audio keeps sync only when the
   * video is placed at `startMs - formatStartMs`.
   */
  formatStartMs: number;
  /** The input's first audio stream, if any. */
  audio?: { streamIndex: number; codec: string };
  /** Set when the video stream is HDR (a PQ or HLG transfer): the decoder tone-maps it to SDR BT.709. */
  hdr?: HdrSignal;
  /** The video stream's pixel format and colour tags, when ffprobe names its pixel format. */
  colour?: SourceColour;
}

/** Transfer names ffprobe gives HDR streams. */
const HDR_TRANSFERS: ReadonlySet<string> = new Set(['smpte2084', 'arib-std-b67']);
/** Primaries and matrices ffprobe names the way zscale spells them (others fall back to BT.2020). */
const ZSCALE_PRIMARIES: ReadonlySet<string> = new Set([
  'bt709',
  'bt470m',
  'bt470bg',
  'smpte170m',
  'smpte240m',
  'film',
  'bt2020',
  'smpte428',
  'smpte431',
  'smpte432',
  'ebu3213',
]);
const ZSCALE_MATRICES: ReadonlySet<string> = new Set(['bt709', 'fcc', 'bt470bg', 'smpte170m', 'smpte240m', 'ycgco', 'bt2020nc', 'bt2020c', 'ictcp']);

/** The HDR description of a video stream, or undefined for SDR (or an unknown transfer). */
export function readHdr(stream: Pick<FfprobeStream, 'color_transfer' | 'color_primaries' | 'color_space' | 'color_range'>): HdrSignal | undefined {
  const transfer = stream.color_transfer;
  if (transfer === undefined || !HDR_TRANSFERS.has(transfer)) return undefined;
  return {
    transfer: transfer as HdrSignal['transfer'],
    primaries: stream.color_primaries !== undefined && ZSCALE_PRIMARIES.has(stream.color_primaries) ? stream.color_primaries : 'bt2020',
    matrix: stream.color_space !== undefined && ZSCALE_MATRICES.has(stream.color_space) ? stream.color_space : 'bt2020nc',
    range: stream.color_range === 'pc' ? 'pc' : 'tv',
  };
}

/** What report.json says about an HDR input: "HDR (PQ) input tone-mapped to SDR BT.709 ...". */
export function hdrNote(hdr: HdrSignal): string {
  const name = hdr.transfer === 'smpte2084' ? 'PQ' : 'HLG';
  return `HDR (${name}) input tone-mapped to SDR BT.709 (hable): the model and annotated.mp4 see an SDR rendering of the source`;
}

/** The subset of `ffprobe -print_format json -show_format -show_streams` we read. */
export interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string; start_time?: string };
}

export interface FfprobeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  start_time?: string;
  disposition?: { attached_pic?: number };
  color_transfer?: string;
  color_primaries?: string;
  color_space?: string;
  color_range?: string;
  pix_fmt?: string;
  tags?: { rotate?: string };
  side_data_list?: { rotation?: number }[];
}

/** "30000/1001" → 29.97; "0/0", "" or garbage → NaN. */
export function parseRate(rate: string | undefined): number {
  if (!rate) return Number.NaN;
  const [num, den = '1'] = rate.split('/');
  const value = Number(num) / Number(den);
  return Number.isFinite(value) && value > 0 ? value : Number.NaN;
}

// Demuxers that read a single still image (png_pipe, jpeg_pipe, image2…) or render text as
// video (tty): ffprobe accepts a PNG renamed to .mp4 or a .txt file, we do not.
const STILL_OR_TEXT_FORMATS = /(^|,)(image2|image2pipe|[a-z0-9]+_pipe|tty)(,|$)/;

/** Reads ffprobe's answer into a VideoProbe without judging it (hasVideo may be false). */
export function readProbe(output: FfprobeOutput): VideoProbe {
  const container = output.format?.format_name ?? 'unknown';
  // Cover art in audio files is a "video" stream too; it is one picture, not a video.
  const stream = output.streams?.find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
  const formatStartMs = secondsToMs(output.format?.start_time) ?? 0;
  const audioStream = output.streams?.find((s) => s.codec_type === 'audio');
  const audio = audioStream ? { streamIndex: audioStream.index, codec: audioStream.codec_name ?? 'unknown' } : undefined;
  if (!stream) {
    return {
      width: 0,
      height: 0,
      fps: Number.NaN,
      durationMs: 0,
      frameCountEstimate: 0,
      codec: '',
      hasVideo: false,
      streamIndex: -1,
      container,
      startMs: 0,
      formatStartMs,
      ...(audio ? { audio } : {}),
    };
  }
  const fps = Number.isNaN(parseRate(stream.avg_frame_rate)) ? parseRate(stream.r_frame_rate) : parseRate(stream.avg_frame_rate);
  const durationSeconds = Number.parseFloat(stream.duration ?? output.format?.duration ?? '');
  const durationMs = Number.isFinite(durationSeconds) && durationSeconds > 0 ? durationSeconds * 1000 : 0;
  const nbFrames = Number.parseInt(stream.nb_frames ?? '', 10);
  const frameCountEstimate = Number.isFinite(nbFrames) ? nbFrames : Number.isFinite(fps) && durationMs > 0 ? Math.round((durationMs / 1000) * fps) : 0;
  // ffmpeg rotates on decode (autorotate), so a portrait phone video comes out tall.
  const rotation = stream.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation ?? Number(stream.tags?.rotate ?? 0);
  const quarterTurn = Math.abs(Math.round(rotation / 90)) % 2 === 1;
  const width = stream.width ?? 0;
  const height = stream.height ?? 0;
  const hdr = readHdr(stream);
  const colour: SourceColour | undefined = stream.pix_fmt
    ? {
        pixelFormat: stream.pix_fmt,
        ...(stream.color_space ? { matrix: stream.color_space } : {}),
        ...(stream.color_range ? { range: stream.color_range } : {}),
      }
    : undefined;
  return {
    width: quarterTurn ? height : width,
    height: quarterTurn ? width : height,
    fps,
    durationMs,
    frameCountEstimate,
    codec: stream.codec_name ?? 'unknown',
    hasVideo: true,
    streamIndex: stream.index,
    container,
    startMs: Math.max(0, secondsToMs(stream.start_time) ?? 0),
    formatStartMs,
    ...(audio ? { audio } : {}),
    ...(hdr ? { hdr } : {}),
    ...(colour ? { colour } : {}),
  };
}

/** ffprobe's "0.042000" → 42; missing or "N/A" → undefined. */
function secondsToMs(seconds: string | undefined): number | undefined {
  const value = Number.parseFloat(seconds ?? '');
  return Number.isFinite(value) ? value * 1000 : undefined;
}

export interface DecodableCheck {
  /** Set: a missing or odd source rate does not matter, frames are resampled to it. */
  requestedFps?: number;
  /**
   * Files record their length; live sources (rtsp, udp, some http) report neither duration
   * nor frame count, so only a file can be judged empty from its header.
   */
  isFile: boolean;
}

/** Refuses what streamseg cannot decode, with a message naming the input and what to do. */
export function assertDecodable(probe: VideoProbe, name: string, check: DecodableCheck): void {
  const { requestedFps } = check;
  if (STILL_OR_TEXT_FORMATS.test(probe.container)) {
    throw new InputError(
      ErrorCode.INPUT_NOT_VIDEO,
      `${name}: ffprobe reads it as ${probe.container} (a still image or text), not a video; give a video file such as .mp4, .mkv, .webm or .mov`,
    );
  }
  if (!probe.hasVideo) {
    throw new InputError(ErrorCode.INPUT_NO_VIDEO_STREAM, `${name}: has no video stream (audio only?); give a file with a video track`);
  }
  const { width, height, fps } = probe;
  const badSize = !(width >= 1 && width <= MAX_DIMENSION && height >= 1 && height <= MAX_DIMENSION);
  const badFps = requestedFps === undefined && !(fps > 0 && fps <= MAX_FPS);
  if (badSize || badFps) {
    throw new InputError(
      ErrorCode.INPUT_DIMENSIONS,
      `${name}: header claims ${width}x${height} at ${Number.isNaN(fps) ? 'unknown' : Number(fps.toFixed(3))} fps; streamseg accepts 1-${MAX_DIMENSION} pixels a side and up to ${MAX_FPS} fps. ` +
        (badSize ? 'Re-encode it at a sane size (ffmpeg -vf scale=1920:-2).' : 'Pass --fps to resample it.'),
    );
  }
  if (check.isFile && probe.frameCountEstimate === 0) {
    throw new InputError(ErrorCode.INPUT_EMPTY, `${name}: the video stream has no frames; check the file was written completely`);
  }
}
