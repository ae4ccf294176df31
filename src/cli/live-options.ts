import { Option, type Command } from 'commander';
import { ConfigError } from '../shared/errors/index.js';
import { liveOptionsSchema, type LiveOptions } from '../shared/job-schemas.js';

/** Flags of `run` and `submit` for live sources. */
export function addLiveOptions(command: Command): Command {
  return command
    .addOption(new Option('--live', 'treat the input as a live stream (implied for rtsp://, udp://, .m3u8 and stdin "-")'))
    .addOption(new Option('--listen', 'rtsp:// input: wait for a publisher (ANNOUNCE/RECORD) on this address instead of connecting to a server'))
    .addOption(new Option('--rtsp-transport <transport>', 'rtsp:// input: lower transport when connecting to a server').choices(['tcp', 'udp']))
    .addOption(new Option('--restream <url>', 'live: also send the annotated stream to this rtsp:// server or udp:// address'));
}

export interface LiveFlags {
  live?: boolean;
  listen?: boolean;
  rtspTransport?: string;
  restream?: string;
}

/** The video's live options from its flags (undefined: none given; the producer still detects live URLs). */
export function liveOptionsFromFlags(flags: LiveFlags, extra: LiveOptions = {}): LiveOptions | undefined {
  const raw: Record<string, unknown> = { ...extra };
  if (flags.listen) raw.listen = true;
  if (flags.rtspTransport !== undefined) raw.rtspTransport = flags.rtspTransport;
  if (flags.restream !== undefined) raw.restreamUrl = flags.restream;
  if (!flags.live && Object.keys(raw).length === 0) return undefined;
  const parsed = liveOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const flagOf: Record<string, string> = { restreamUrl: '--restream', rtspTransport: '--rtsp-transport' };
    throw new ConfigError(parsed.error.issues.map((issue) => `${flagOf[String(issue.path[0])] ?? String(issue.path[0])}: ${issue.message}`));
  }
  return parsed.data;
}
