import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import { videoIdSchema } from '../../shared/job-schemas.js';
import type { VideoStateStore } from '../../shared/video-state.js';
import type { VideoIndexRepository } from '../repositories/video-index.repository.js';
import { cancelledView, videoView, type VideoView } from './video-view.js';

/** Reads videos' state for the API: one video, or the newest ones. */
export class VideoQueryService {
  constructor(
    private readonly states: VideoStateStore,
    private readonly index: VideoIndexRepository,
    /** Takes server paths out of a video's error and warnings. @defaultValue none */
    private readonly scrub: (text: string) => string = (text) => text,
  ) {}

  /** The video's view, or null when Redis has neither its state nor a cancel tombstone. */
  async find(videoId: string): Promise<VideoView | null> {
    const state = await this.states.get(videoId);
    if (state) {
      const view = videoView(state);
      if (view.error !== null) view.error = this.scrub(view.error);
      view.warnings = view.warnings.map(this.scrub);
      // Cancelled but not cleaned yet: the producer marked it failed with E_CANCELLED.
      if (state.status !== 'done' && (await this.states.cancelledAt(videoId)) !== null) view.status = 'cancelled';
      return view;
    }
    const cancelledAt = await this.states.cancelledAt(videoId);
    return cancelledAt === null ? null : cancelledView(videoId, cancelledAt);
  }

  async get(videoId: string): Promise<VideoView> {
    const view = await this.find(assertVideoId(videoId));
    if (!view) throw new HttpError(404, ErrorCode.VIDEO_UNKNOWN, `no video ${videoId} (never submitted, or expired after STREAMSEG_FRAME_TTL_SECONDS)`);
    return view;
  }

  /** The newest videos first; ids whose state expired are dropped from the index. */
  async list(limit: number, offset = 0): Promise<VideoView[]> {
    const ids = await this.index.newest(limit, offset);
    const views = await Promise.all(ids.map((id) => this.find(id)));
    const gone = ids.filter((_, i) => views[i] === null);
    await this.index.remove(...gone);
    return views.filter((v): v is VideoView => v !== null);
  }
}

/** A video id from a URL, checked like every id (no separators, no traversal). */
export function assertVideoId(videoId: string): string {
  if (!videoIdSchema.safeParse(videoId).success) throw new HttpError(400, ErrorCode.BAD_REQUEST, `"${videoId}" is not a video id`);
  return videoId;
}
