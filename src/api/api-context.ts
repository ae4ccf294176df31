import type { RedisConnection } from '../shared/redis.js';
import type { PipelineClient } from '../shared/pipeline-client.js';
import type { StreamsegConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { ModelPackage } from '../shared/model-manifest.js';
import type { TokenUsageRepository } from './repositories/token-usage.repository.js';
import type { UploadRepository } from './repositories/upload.repository.js';
import type { ServerPathScrubber } from './server-path-scrubber.js';
import type { TokenLimitsService } from './services/token-limits.service.js';
import type { VideoCancelService } from './services/video-cancel.service.js';
import type { VideoQueryService } from './services/video-query.service.js';
import type { VideoSubmissionService } from './services/video-submission.service.js';

/** What the route handlers share; built once by `createApiServer`. */
export interface ApiContext {
  config: StreamsegConfig;
  /** Fails fast while Redis is away (producer purpose): requests error instead of hanging. */
  redis: RedisConnection;
  pipeline: PipelineClient;
  queries: VideoQueryService;
  submissions: VideoSubmissionService;
  cancels: VideoCancelService;
  /** Per-token limits (429). */
  limits: TokenLimitsService;
  /** Which token submitted which video. */
  usage: TokenUsageRepository;
  uploads: UploadRepository;
  /** Takes server paths out of messages sent to clients. */
  paths: ServerPathScrubber;
  /** The model package (adapter routes validate against it); null when it cannot be loaded here. */
  modelPackage: ModelPackage | null;
  logger: Logger;
  /** A new connection for one blocking reader (SSE); the caller disconnects it. */
  openBlockingConnection(): RedisConnection;
  /** Resolves when the server starts closing (long-lived responses end then). */
  closing: Promise<void>;
}
