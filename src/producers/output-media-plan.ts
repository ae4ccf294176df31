import path from 'node:path';
import type { AudioPlan, VideoInput } from '../shared/job-schemas.js';
import type { VideoProbe } from './probe-validation.js';

/** Audio codecs MP4 players (browsers included) play as they are; anything else is transcoded to AAC. */
export const MP4_AUDIO_CODECS: ReadonlySet<string> = new Set(['aac', 'mp3']);

/** How the sink lays out annotated.mp4: where its video starts, and what audio goes with it. */
export interface OutputMediaPlan {
  /** ms; see assembleVideoJobSchema.videoOffsetMs. */
  videoOffsetMs: number;
  audio: AudioPlan;
}

/**
 * Decides annotated.mp4's audio and start from the probe. The audio is read again from the
 * input file by the sink, so only file inputs keep it (a URL may not serve the same bytes
 * twice, and a live source is gone). ffmpeg reads an input's timestamps relative to its
 * earliest stream, so with the audio the video goes at `startMs - formatStartMs` to stay in
 * sync; without it, at the source's own `startMs`.
 */
export function planOutputMedia(input: VideoInput, probe: VideoProbe, keepAudio: boolean | undefined): OutputMediaPlan {
  const audio = planAudio(input, probe, keepAudio);
  const videoOffsetMs = audio.action === 'none' ? probe.startMs : Math.max(0, probe.startMs - probe.formatStartMs);
  return { videoOffsetMs, audio };
}

function planAudio(input: VideoInput, probe: VideoProbe, keepAudio: boolean | undefined): AudioPlan {
  if (keepAudio === false) return { action: 'none', reason: 'dropped on request (--no-audio / audio: false)' };
  if (!probe.audio) return { action: 'none', reason: 'the input has no audio stream' };
  if (input.kind !== 'file') return { action: 'none', reason: 'audio is kept for file inputs only; this input is a URL' };
  const { streamIndex, codec } = probe.audio;
  return { action: MP4_AUDIO_CODECS.has(codec) ? 'copy' : 'aac', path: path.resolve(input.path), streamIndex, codec };
}
