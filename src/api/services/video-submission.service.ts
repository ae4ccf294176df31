import path from 'node:path';
import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import type { VideoInput } from '../../shared/job-schemas.js';
import type { Logger } from '../../shared/logger.js';
import { parseVideoUrl, type UrlDestinationPolicy } from '../../shared/url-policy.js';
import type { VideoStateStore } from '../../shared/video-state.js';
import { newVideoId, type VideoSubmitter } from '../../shared/video-submitter.js';
import type { ApiPrincipal } from '../auth/token-verifier.js';
import type { DedupRepository } from '../repositories/dedup.repository.js';
import type { TokenUsageRepository } from '../repositories/token-usage.repository.js';
import type { ReceivedUpload, UploadRepository } from '../repositories/upload.repository.js';
import type { TokenLimitsService } from './token-limits.service.js';
import { submissionHash, type ResolvedVideoOptions } from './video-request-options.js';

export interface SubmissionResult {
  id: string;
  /** True when an identical submission within the dedup window already had this id. */
  deduplicated: boolean;
}

/**
 * Submits videos from the API: a URL or an upload, each deduplicated by content (upload
 * bytes or URL) plus options within the dedup window. Outputs go to `<outDir>/<id>/`.
 */
export class VideoSubmissionService {
  constructor(
    private readonly submitter: VideoSubmitter,
    private readonly dedup: DedupRepository,
    private readonly uploads: UploadRepository,
    private readonly outDir: string,
    private readonly logger: Logger,
    private readonly policy: UrlDestinationPolicy,
    private readonly usage: TokenUsageRepository,
    private readonly limits: TokenLimitsService,
    private readonly states: VideoStateStore,
  ) {}

  /**
   * A URL submission: the string is checked as it is (no trimming; control characters and
   * whitespace refused), it must be an http, https, rtsp or udp URL, and its host must pass the
   * destination policy. What was checked is what the producer opens: the API never takes a path.
   */
  async submitUrl(url: string, options: ResolvedVideoOptions, principal: ApiPrincipal): Promise<SubmissionResult> {
    await this.policy.check(parseVideoUrl(url, 'url'), 'url');
    if (options.live?.restreamUrl) await this.policy.check(parseVideoUrl(options.live.restreamUrl, 'live.restreamUrl'), 'live.restreamUrl');
    const input: VideoInput = { kind: 'url', url, restricted: true };
    return this.submit(principal, submissionHash({ url }, options), options, async () => input);
  }

  async submitUpload(upload: ReceivedUpload, options: ResolvedVideoOptions, principal: ApiPrincipal): Promise<SubmissionResult> {
    if (upload.bytes === 0) {
      await this.uploads.discard(upload.file);
      throw new HttpError(400, ErrorCode.BAD_REQUEST, 'the uploaded file is empty');
    }
    let kept: string | undefined;
    try {
      return await this.submit(principal, submissionHash({ upload: upload.sha256 }, options), options, async (id) => ({
        kind: 'file',
        path: (kept = await this.uploads.keep(upload, id)),
      }));
    } catch (error) {
      if (kept) await this.uploads.discard(kept);
      kept = undefined;
      throw error;
    } finally {
      // A duplicate (or a failed submit) leaves the bytes unused.
      if (!kept) await this.uploads.discard(upload.file);
    }
  }

  private async submit(
    principal: ApiPrincipal,
    hash: string,
    options: ResolvedVideoOptions,
    inputFor: (id: string) => Promise<VideoInput>,
  ): Promise<SubmissionResult> {
    const id = newVideoId();
    if (this.dedup.enabled) {
      const existing = await this.claim(hash, id);
      if (existing) return { id: existing, deduplicated: true };
    }
    let reserved = false;
    try {
      await this.usage.setOwner(id, principal.id);
      await this.limits.reserveVideo(principal, id);
      reserved = true;
      const input = await inputFor(id);
      await this.submitter.submit(input, { videoId: id, outDir: path.join(this.outDir, id), ...options });
    } catch (error) {
      if (this.dedup.enabled) await this.dedup.release(id).catch(() => undefined);
      if (reserved) await this.limits.releaseVideo(principal, id).catch(() => undefined);
      throw error;
    }
    this.logger.info({ videoId: id, token: principal.id }, 'video submitted');
    return { id, deduplicated: false };
  }

  /**
   * Claims the submission's hash; an identical submission's video is reused only while it is
   * running or finished well: a failed one gives the hash to this new video.
   */
  private async claim(hash: string, id: string): Promise<string | null> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.dedup.claim(hash, id);
      if (!existing) return null;
      if ((await this.states.get(existing))?.status !== 'failed') return existing;
      if (await this.dedup.replace(hash, existing, id)) return null;
    }
    // Three other submissions raced for the same hash: take whichever holds it now.
    return this.dedup.claim(hash, id);
  }
}
