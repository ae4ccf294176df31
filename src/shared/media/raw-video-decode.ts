import type { ModelInputPlan } from '../model-input-plan.js';
import type { RawPixelFormat } from './raw-pixel-format.js';

/**
 * How a file's video stream becomes raw frames: the ffmpeg arguments the producer decodes
 * with (RGB24), and the sink too when it decodes a file's source frames itself
 * (STREAMSEG_SOURCE_FRAMES, in yuv420p where it can). One definition, because the two must
 * produce the very same frames, geometry and timing: the masks the workers made from the
 * producer's frames are overlaid on the sink's.
 */

/**
 * The colour description of an HDR video stream, as zscale takes it. Primaries, matrix and range
 * come from the stream when it names them (and zscale knows the name), else HDR's usual
 * BT.2020, non-constant-luminance, limited range.
 */
export interface HdrSignal {
  /** `smpte2084` (PQ, HDR10) or `arib-std-b67` (HLG). */
  transfer: 'smpte2084' | 'arib-std-b67';
  primaries: string;
  matrix: string;
  range: 'tv' | 'pc';
}

/** A video stream's pixel layout and colour tags, as ffprobe names them (absent: untagged). */
export interface SourceColour {
  pixelFormat: string;
  matrix?: string;
  range?: string;
}

/**
 * Whether the sink may bring a stream to BT.709 with the colorspace filter (a matrix conversion
 * in 4:2:0) instead of swscale's: 8-bit yuv420p, limited range, BT.601 (smpte170m and bt470bg
 * share its matrix) or untagged, which swscale reads as BT.601 for the producer too.
 */
export function isBt601Yuv420p(colour: SourceColour | undefined): boolean {
  if (!colour || colour.pixelFormat !== 'yuv420p') return false;
  const untagged = (value: string | undefined) => value === undefined || value === 'unknown';
  return (untagged(colour.range) || colour.range === 'tv') && (untagged(colour.matrix) || colour.matrix === 'smpte170m' || colour.matrix === 'bt470bg');
}

/** Smallest side bwdif takes (its chroma planes need 3 columns and 4 lines), with a margin. */
const MIN_DEINTERLACE_SIDE = 16;

export interface RawDecodeArgsOptions {
  /** What ffmpeg opens (`file:/abs/path` or a URL) and the protocols it may use for it. */
  locator: string;
  protocols: string;
  /** ffmpeg stream index of the video stream. @defaultValue first video stream */
  streamIndex?: number;
  width: number;
  height: number;
  fps: number;
  hdr?: HdrSignal;
  /** The stream's layout and colour tags: lets a yuv420p decode pick the cheaper conversion to BT.709. */
  colour?: SourceColour;
  /** @defaultValue `rgb24` */
  pixelFormat?: RawPixelFormat;
  /**
   * Hand out the model's input instead of the source-size frame (RGB24 only): each frame scaled
   * into `rect` and padded black to `width`×`height` (a `ModelInputPlan`).
   */
  modelInput?: ModelInputPlan;
  /**
   * Also write each frame at source size in this layout, exactly as the sink's own decode makes
   * it: one decode feeds the producer's model input and the sink's source frames
   * (SourceFrameHandoff). Each frame on stdout is then the source-size frame followed by the
   * other (see rawDecodeArgs).
   */
  sourceOutput?: { pixelFormat: RawPixelFormat };
}

/**
 * ffmpeg arguments decoding one video stream to raw frames on stdout at `width`×`height` and
 * `fps`. With `sourceOutput`, the decoded frame is split in two streams of one rawvideo output:
 * the muxer interleaves them by timestamp, the lower stream first on a tie, so stdout carries
 * source frame 0, frame 0, source frame 1, frame 1… Two outputs (stdout and pipe:3) are not
 * written in lockstep: ffmpeg sometimes writes one a frame ahead of the other, and a reader that
 * takes them frame for frame then waits on one pipe while ffmpeg blocks on the other (it hung
 * within 1200 frames). Not every ffmpeg muxes two streams into rawvideo: see
 * FfmpegRepository.interleavesRawStreams.
 */
export function rawDecodeArgs(options: RawDecodeArgsOptions): string[] {
  const { width, height, fps } = options;
  const pixelFormat = options.pixelFormat ?? 'rgb24';
  if (options.modelInput && pixelFormat !== 'rgb24') throw new RangeError(`a model input is RGB24; ${pixelFormat} was asked for`);
  const stream = options.streamIndex === undefined ? '0:v:0' : `0:${options.streamIndex}`;
  // bwdif deinterlaces the frames flagged interlaced (and only those): combed fields would
  // reach the model and the annotated video otherwise (it refuses tiny frames, which are
  // never interlaced video). The fps filter does the resampling (it rounds to the nearest
  // frame and drops the tail cleanly); `-r` alone duplicates frames at the end (3 s at 5 fps
  // gave 17 frames, the fps filter gives 15). Its output is constant-rate already: passthrough
  // keeps ffmpeg from inventing frames to fill the gap before a first frame that is not at 0
  // (an MKV starting at 0.042 s behind audio at 0 gave one frame too many). It comes before
  // every per-frame conversion, so frames it drops are never converted; the frames come out
  // the same as with it last (checked byte for byte at 10, 24 and 30 fps from 24).
  //
  // HDR (PQ or HLG, BT.2020) is tone-mapped to SDR BT.709 after deinterlacing: read as SDR
  // it would reach the model and annotated.mp4 washed out, with shifted colours.
  const common = [
    ...(Math.min(width, height) >= MIN_DEINTERLACE_SIDE ? ['bwdif=mode=send_frame:deint=interlaced'] : []),
    ...(options.hdr ? [hdrToSdrFilter(options.hdr)] : []),
    `fps=${fps}`,
  ];
  const main = [toLayout(pixelFormat, options), ...(options.modelInput ? modelInputFilters(options.modelInput) : [])];
  const input = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-protocol_whitelist', options.protocols, '-i', options.locator];
  if (!options.sourceOutput) {
    // prettier-ignore
    return [
      ...input, '-map', stream, '-an', '-sn', '-dn', '-vf', [...common, ...main].join(','),
      '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', pixelFormat, 'pipe:1',
    ];
  }
  const source = options.sourceOutput.pixelFormat;
  const graph = `[${stream}]${common.join(',')},split[main][source];[main]${main.join(',')}[mainOut];[source]${toLayout(source, options)}[sourceOut]`;
  // prettier-ignore
  return [
    ...input, '-filter_complex', graph, '-map', '[sourceOut]', '-map', '[mainOut]',
    '-fps_mode', 'passthrough', '-c:v', 'rawvideo', '-pix_fmt:v:0', source, '-pix_fmt:v:1', pixelFormat, '-f', 'rawvideo', 'pipe:1',
  ];
}

/**
 * The scale to `width`×`height` in `format`. scale pins the output size to the probed one: a
 * stream that changes resolution midway would otherwise change the frame size under the
 * reader's feet. yuv420p comes out BT.709, limited range, as the encoder tags annotated.mp4
 * (playerSafeFilter); swscale converts only what differs (a full-range or RGB/HDR stage), a
 * BT.709 stream passes through.
 */
function toLayout(format: RawPixelFormat, options: RawDecodeArgsOptions): string {
  const { width, height } = options;
  return format === 'yuv420p' ? toBt709Yuv420p(width, height, options.hdr ? undefined : options.colour) : `scale=${width}:${height}`;
}

/**
 * Filters that scale a stream to `width`×`height` yuv420p, BT.709, limited range. A BT.601
 * 4:2:0 stream (isBt601Yuv420p) is converted by the colorspace filter, its matrix alone
 * (primaries and transfer named BT.709 on both sides, so nothing else changes): over 1200
 * 640x360 frames it cost 2.9 s of CPU against swscale's 3.5 s, and decoded back to RGB it lies
 * closer to the source (mean difference 0.44 against 2.06 levels). Anything else goes through
 * swscale, which handles every layout and range.
 */
function toBt709Yuv420p(width: number, height: number, colour: SourceColour | undefined): string {
  if (!isBt601Yuv420p(colour)) return `scale=${width}:${height}:out_color_matrix=bt709:out_range=tv`;
  return [`scale=${width}:${height}`, 'colorspace=ispace=smpte170m:iprimaries=bt709:itrc=bt709:irange=tv:all=bt709:range=tv:fast=1:format=yuv420p'].join(',');
}

/**
 * Whether the decoder may hand out `plan`'s model input for a `sourceWidth`×`sourceHeight`
 * source (`modelInput`): when the plan shrinks the source or keeps its size. Enlarging, libvips
 * and swscale place pixel centres differently (a 160x160 source planned to 224x224 came out a
 * mean 3.3 levels apart, up to 88 at edges), so small sources keep `LetterboxResizer`.
 */
export function decoderMakesModelInput(plan: ModelInputPlan, sourceWidth: number, sourceHeight: number): boolean {
  return plan.rect.width <= sourceWidth && plan.rect.height <= sourceHeight;
}

/**
 * The producer's letterbox in ffmpeg, after the frame is converted at source size: the full-size
 * frame never crosses the pipe. Lanczos in RGB, as sharp (libvips' lanczos3 reduce) does it in
 * `LetterboxResizer`, which training stills go through. zimg's lanczos (zscale) is used rather
 * than swscale's: it is as close to sharp and cheaper. Mean difference from sharp over 120
 * frames, zscale against swscale `lanczos+accurate_rnd`:
 * - 640x360 → 224x128: 0.176 against 0.179, with 99.9% of bytes within one level;
 * - 1280x720: 0.295 against 0.300;
 * - 768x576 → 192x144: 0.401 against 0.409.
 * It costs 0.7 ms less CPU per 640x360 frame. Scaling straight from yuv420p would be cheaper
 * still, but it moves the input by a mean 1.24 levels, and base on fog by a point.
 */
function modelInputFilters(plan: ModelInputPlan): string[] {
  const { width, height, rect } = plan;
  const letterboxed = rect.width !== width || rect.height !== height;
  return [
    'format=rgb24',
    `zscale=w=${rect.width}:h=${rect.height}:filter=lanczos`,
    ...(letterboxed ? [`pad=${width}:${height}:${rect.x}:${rect.y}:black`] : []),
  ];
}

/**
 * ffmpeg filters that tone-map an HDR stream to SDR BT.709 (8-bit RGB): to linear light (the
 * input's transfer, primaries, matrix and range named explicitly, so a stream whose frames carry
 * fewer tags than its header still converts), to BT.709 primaries, hable tone mapping without
 * desaturation, then the BT.709 transfer. npl=100: SDR reference white at 100 nits. Out-of-gamut
 * colours are clipped in RGB, as a player does.
 */
export function hdrToSdrFilter(hdr: HdrSignal): string {
  return [
    // p= too: zscale would otherwise give the output the frame's own primaries, unspecified in
    // a stream tagged with its transfer only ("no path between colorspaces" in the next step).
    `zscale=tin=${hdr.transfer}:pin=${hdr.primaries}:min=${hdr.matrix}:rin=${hdr.range}:t=linear:npl=100:p=${hdr.primaries}`,
    'format=gbrpf32le',
    'zscale=p=bt709',
    'tonemap=hable:desat=0',
    'zscale=t=bt709',
    'format=gbrp',
  ].join(',');
}
