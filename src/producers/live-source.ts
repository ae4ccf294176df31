import { decodeVideoJobSchema, type LiveOptions, type VideoInput, type VideoOptions } from '../shared/job-schemas.js';

/** The kinds of live source, each read with its own ffmpeg options and protocol whitelist. */
export type LiveSourceKind = 'rtsp' | 'udp' | 'hls' | 'http';

/**
 * Whether a video is live: its options carry `live`, or its input is an rtsp/udp URL or an
 * HLS playlist URL. Progressive http(s) inputs are files unless `live` is given (a URL of an
 * .mp4 has a length; a camera's HTTP MPEG-TS does not, and its submitter says so).
 */
export function isLiveVideo(input: VideoInput, options: Pick<VideoOptions, 'live'>): boolean {
  if (options.live) return true;
  if (input.kind !== 'url') return false;
  const kind = liveSourceKind(input.url);
  return kind === 'rtsp' || kind === 'udp' || kind === 'hls';
}

export function liveSourceKind(url: string): LiveSourceKind {
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  if (scheme === 'rtsp') return 'rtsp';
  if (scheme === 'udp') return 'udp';
  let pathname = '';
  try {
    pathname = new URL(url).pathname;
  } catch {
    // validated upstream; an unparsable URL is read as progressive http
  }
  return /\.m3u8?$/i.test(pathname) ? 'hls' : 'http';
}

/**
 * Protocols ffmpeg may open for each kind of live source: only what that source needs (never
 * `file`), so a crafted playlist or SDP cannot make ffmpeg read local files.
 */
export const LIVE_PROTOCOL_WHITELIST: Record<LiveSourceKind, string> = {
  rtsp: 'rtsp,rtp,udp,tcp',
  udp: 'udp,rtp',
  hls: 'http,https,tcp,tls,crypto',
  http: 'http,https,tcp,tls',
};

/** Socket timeouts (µs) after which a silent source counts as dropped and is reopened. */
const IO_TIMEOUT_US = 5_000_000;

export interface LiveInputSpec {
  kind: LiveSourceKind;
  /** What ffmpeg opens. */
  locator: string;
  /** Arguments before `-i`. */
  inputArgs: string[];
}

/** How ffmpeg opens a live source: scheme-specific options, then `-i <locator>`. */
export function liveInputSpec(url: string, live: LiveOptions = {}): LiveInputSpec {
  const kind = liveSourceKind(url);
  // One second of analysis at most: a live source is opened again after every drop, and the
  // stream parameters of MPEG-TS and HLS are known after the first keyframe.
  const args = ['-protocol_whitelist', LIVE_PROTOCOL_WHITELIST[kind], '-analyzeduration', '1000000'];
  let locator = url;
  if (kind === 'rtsp') {
    if (live.listen) {
      // ffmpeg is the server a publisher (ANNOUNCE/RECORD, TCP or UDP transport) connects to.
      args.push('-rtsp_flags', 'listen');
    } else {
      args.push('-rtsp_transport', live.rtspTransport ?? 'tcp', '-timeout', String(IO_TIMEOUT_US));
    }
  } else if (kind === 'udp') {
    // A read timeout turns a silent sender into an exit (and a reconnect); a big FIFO with
    // non-fatal overruns rides out a busy machine instead of failing the stream.
    const extra = new URLSearchParams();
    const given = new URL(url).searchParams;
    if (!given.has('timeout')) extra.set('timeout', String(IO_TIMEOUT_US));
    if (!given.has('fifo_size')) extra.set('fifo_size', '1000000');
    if (!given.has('overrun_nonfatal')) extra.set('overrun_nonfatal', '1');
    const extraText = extra.toString();
    if (extraText) locator = `${url}${url.includes('?') ? '&' : '?'}${extraText}`;
  } else {
    args.push('-rw_timeout', String(IO_TIMEOUT_US));
    // Start at the live edge of a live playlist, not three segments back.
    if (kind === 'hls') args.push('-live_start_index', '-1');
  }
  if (live.nativeRate) args.push('-re');
  return { kind, locator, inputArgs: args };
}

/** Whether a decode-video job's data describes a live video (malformed data: no; the file path reports it). */
export function isLiveJob(data: unknown): boolean {
  const parsed = decodeVideoJobSchema.safeParse(data);
  return parsed.success && isLiveVideo(parsed.data.input, parsed.data.options);
}
