import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import type { VideoStateStore } from '../../shared/video-state.js';
import type { ApiPrincipal } from '../auth/token-verifier.js';
import type { TokenUsageRepository } from '../repositories/token-usage.repository.js';

export interface TokenLimits {
  /** Videos running at once per token; 0: no limit. */
  maxVideos: number;
  /** Submissions per token in any 60 s; 0: no limit. */
  submissionsPerMinute: number;
}

/** How long a client refused for running videos is told to wait: videos end in seconds to minutes. */
const BUSY_RETRY_AFTER_SECONDS = 10;

/**
 * Per-token limits (STREAMSEG_TOKEN_MAX_VIDEOS, STREAMSEG_TOKEN_SUBMISSIONS_PER_MINUTE): a token
 * past either gets 429 with Retry-After, so one token holder cannot flood the queues.
 */
export class TokenLimitsService {
  constructor(
    private readonly usage: TokenUsageRepository,
    private readonly states: VideoStateStore,
    private readonly limits: TokenLimits,
  ) {}

  /** Counts a submission attempt against the rate limit (before the request body is read). */
  async countSubmission(principal: ApiPrincipal): Promise<void> {
    if (this.limits.submissionsPerMinute === 0) return;
    const waitMs = await this.usage.countSubmission(principal.id, this.limits.submissionsPerMinute);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      throw new HttpError(
        429,
        ErrorCode.RATE_LIMITED,
        `this token made ${this.limits.submissionsPerMinute} submissions in the last minute (STREAMSEG_TOKEN_SUBMISSIONS_PER_MINUTE); try again in ${seconds} s`,
        {
          retryAfterSeconds: seconds,
        },
      );
    }
  }

  /** Holds one of the token's running-video places for `videoId`; 429 when all are taken. */
  async reserveVideo(principal: ApiPrincipal, videoId: string): Promise<void> {
    if (this.limits.maxVideos === 0) return;
    const ok = await this.usage.reserveActive(principal.id, videoId, this.limits.maxVideos, (id) => this.isFinished(id));
    if (!ok) {
      throw new HttpError(
        429,
        ErrorCode.TOO_MANY_VIDEOS,
        `this token already has ${this.limits.maxVideos} videos running (STREAMSEG_TOKEN_MAX_VIDEOS): wait for one to finish, or stop or cancel one`,
        { retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS },
      );
    }
  }

  /** Gives a place back (a submission that failed after reserving). */
  async releaseVideo(principal: ApiPrincipal, videoId: string): Promise<void> {
    if (this.limits.maxVideos > 0) await this.usage.releaseActive(principal.id, videoId);
  }

  private async isFinished(videoId: string): Promise<boolean> {
    const state = await this.states.get(videoId);
    if (!state) return (await this.states.isCancelled(videoId)) || !(await this.usage.owner(videoId));
    return state.status === 'done' || state.status === 'failed';
  }
}
