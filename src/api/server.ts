import http from 'node:http';
import path from 'node:path';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { PipelineClient } from '../shared/pipeline-client.js';
import type { StreamsegConfig } from '../shared/config.js';
import { ConfigError, ErrorCode, errorLine, HttpError, InputError, ModelError, StreamsegError } from '../shared/errors/index.js';
import type { Logger } from '../shared/logger.js';
import { loadModelPackage, type ModelPackage } from '../shared/model-manifest.js';
import { metricsRegistry } from '../shared/metrics.js';
import { MetricsPublisher, metricsInstanceId } from '../shared/metrics-publisher.js';
import { createRedis } from '../shared/redis.js';
import { UrlDestinationPolicy } from '../shared/url-policy.js';
import type { ApiContext } from './api-context.js';
import { TokenVerifier } from './auth/token-verifier.js';
import { ServerPathScrubber } from './server-path-scrubber.js';
import { parseApiTokens } from '../shared/api-tokens.js';
import { TokenUsageRepository } from './repositories/token-usage.repository.js';
import { TokenLimitsService } from './services/token-limits.service.js';
import { registerBearerAuth } from './auth/bearer-auth.js';
import { registerBullBoard } from './bull-board.js';
import { DedupRepository } from './repositories/dedup.repository.js';
import { UploadRepository } from './repositories/upload.repository.js';
import { VideoIndexRepository } from './repositories/video-index.repository.js';
import { registerAdapterRoutes } from './routes/adapters.routes.js';
import { registerHealthRoutes } from './routes/health.routes.js';
import { registerMetricsRoutes } from './routes/metrics.routes.js';
import { registerQueueRoutes } from './routes/queues.routes.js';
import { registerVideoEventRoutes } from './routes/video-events.routes.js';
import { registerVideoFileRoutes } from './routes/video-files.routes.js';
import { registerVideoRoutes } from './routes/videos.routes.js';
import { registerWebRoutes } from './routes/web.routes.js';
import { ClusterMetricsService } from './services/cluster-metrics.service.js';
import { VideoCancelService, type CancelTuning } from './services/video-cancel.service.js';
import { VideoQueryService } from './services/video-query.service.js';
import { VideoSubmissionService } from './services/video-submission.service.js';
import { UploadRetentionService } from './services/upload-retention.service.js';

export interface ApiServerOptions {
  config: StreamsegConfig;
  redisUrl: string;
  logger: Logger;
  /** The model package for the adapter routes; by default loaded from config.modelDir (null if that fails). */
  modelPackage?: ModelPackage | null;
  /** Tests shorten the cancel waits. */
  cancel?: CancelTuning;
}

export interface ApiServer {
  readonly app: FastifyInstance;
  /** Listens and resolves with the base URL (`http://host:port`). */
  listen(port: number, host?: string): Promise<string>;
  /** Ends event streams, stops listening, closes Redis connections. Idempotent. */
  close(): Promise<void>;
}

/** Refuses to serve without a token; `serve` calls it first, before it starts anything. */
export function assertApiConfig(config: StreamsegConfig): void {
  if (config.apiTokens.length === 0) {
    throw new ConfigError([
      'STREAMSEG_API_TOKENS is empty: set one or more comma-separated tokens (at least 16 characters each, optionally :read, :submit or :admin), e.g. `openssl rand -hex 24`',
    ]);
  }
}

/**
 * Builds the HTTP API (Fastify): /v1 videos, events, outputs, adapters; /metrics; /healthz and
 * /readyz; /admin/queues (bull-board); /v1/openapi.json; the web page at /web/. Every route but
 * the probes and the page's static files needs a bearer token from STREAMSEG_API_TOKENS.
 */
export async function createApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { config, redisUrl } = options;
  const logger = options.logger.child({ role: 'api' });
  assertApiConfig(config);
  const modelPackage =
    options.modelPackage !== undefined
      ? options.modelPackage
      : await loadModelPackage(config.modelDir).catch((error: unknown) => {
          logger.warn({ err: errorLine(error) }, 'model package not loaded: the adapter routes answer 503');
          return null;
        });

  const pipeline = await PipelineClient.connect(config, redisUrl);
  const redis = pipeline.redis;
  const outDir = path.resolve(config.outDir);
  const dedup = new DedupRepository(redis, config.dedupSeconds, config.frameTtlSeconds);
  const index = new VideoIndexRepository(redis);
  const uploadDir = path.resolve(config.uploadDir ?? path.join(outDir, 'uploads'));
  const paths = ServerPathScrubber.forServer({ outDir, uploadDir, modelDir: config.modelDir });
  const uploads = new UploadRepository(uploadDir);
  const queries = new VideoQueryService(pipeline.states, index, (text) => paths.scrub(text));
  const usage = new TokenUsageRepository(redis, config.frameTtlSeconds);
  const limits = new TokenLimitsService(usage, pipeline.states, { maxVideos: config.tokenMaxVideos, submissionsPerMinute: config.tokenSubmissionsPerMinute });
  const queues = Object.values(pipeline.queues);
  let signalClosing!: () => void;
  const closing = new Promise<void>((resolve) => (signalClosing = resolve));
  const ctx: ApiContext = {
    config,
    redis,
    pipeline,
    queries,
    submissions: new VideoSubmissionService(
      pipeline.submitter,
      dedup,
      uploads,
      outDir,
      logger,
      new UrlDestinationPolicy(config.urlAllow),
      usage,
      limits,
      pipeline.states,
    ),
    cancels: new VideoCancelService(
      { redis, states: pipeline.states, frames: pipeline.frames, queues: pipeline.queues, dedup, index, uploads, logger },
      options.cancel,
    ),
    limits,
    usage,
    uploads,
    paths,
    modelPackage,
    logger,
    openBlockingConnection: () => createRedis(redisUrl, { purpose: 'worker', connectionName: 'streamseg-api-events' }),
    closing,
  };

  // Slow headers, a stalled body or an idle connection are closed instead of held open.
  const app = Fastify({
    forceCloseConnections: true,
    logger: false,
    connectionTimeout: config.httpIdleTimeoutMs,
    requestTimeout: config.httpRequestTimeoutMs,
    keepAliveTimeout: Math.min(5000, config.httpIdleTimeoutMs),
    // Node checks the header and request deadlines on this interval (30 s by default); with a
    // server factory, Fastify leaves the idle timeout to it.
    serverFactory: (handler) => {
      const server = http
        .createServer({ headersTimeout: config.httpHeadersTimeoutMs, requestTimeout: config.httpRequestTimeoutMs, connectionsCheckingInterval: 1000 }, handler)
        .setTimeout(config.httpIdleTimeoutMs);
      // Node answers a header or request deadline with a 408 and ends its side only: a client
      // that never reads or closes would keep the socket. Destroy it.
      server.prependListener('clientError', (error: NodeJS.ErrnoException, socket) => {
        if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') socket.destroy();
      });
      return server;
    },
  });
  app.setErrorHandler((error: FastifyError | StreamsegError, request, reply) => {
    const { status, code } = classify(error);
    if (status >= 500) logger.error({ err: error, url: request.url, method: request.method }, 'request failed');
    if (error instanceof HttpError && error.retryAfterSeconds !== undefined) void reply.header('retry-after', String(error.retryAfterSeconds));
    // The log has the whole error; the client gets it without server paths.
    return reply.code(status).send({ error: { code, message: paths.scrub(error instanceof StreamsegError ? error.message : errorLine(error)) } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: ErrorCode.NOT_FOUND, message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'streamseg API',
        version: '1',
        description: 'Submit videos, follow their progress and frame records, fetch the segmented outputs, manage adapters.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    hideUntagged: true,
  });
  await app.register(multipart, { limits: { fileSize: config.uploadMaxBytes, files: 2, fields: 32, fieldSize: 64 * 1024 } });
  registerBearerAuth(app, new TokenVerifier(parseApiTokens(config.apiTokens)));

  registerHealthRoutes(app, ctx);
  registerVideoRoutes(app, ctx);
  registerVideoEventRoutes(app, ctx);
  registerVideoFileRoutes(app, ctx);
  registerAdapterRoutes(app, ctx);
  registerQueueRoutes(app, ctx);
  registerMetricsRoutes(app, new ClusterMetricsService(redis, queues, metricsInstanceId()));
  registerWebRoutes(app);
  await registerBullBoard(app, queues);
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  // This process's own series (e.g. frames dropped by a cancel) reach the other API replicas' /metrics too.
  const retention = new UploadRetentionService(
    uploads,
    pipeline.states,
    { retentionSeconds: config.uploadRetentionSeconds, orphanSeconds: config.frameTtlSeconds, incomingSeconds: config.httpRequestTimeoutMs / 1000 + 60 },
    logger,
  ).start();
  const publisher =
    config.metricsPublishMs > 0 ? new MetricsPublisher({ redis, registry: metricsRegistry, intervalMs: config.metricsPublishMs }).start() : undefined;

  let closed: Promise<void> | undefined;
  return {
    app,
    async listen(port, host = config.apiHost) {
      await app.listen({ port, host });
      const address = app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
      logger.info({ port: actualPort, host }, 'API listening');
      return `http://${shown}:${actualPort}`;
    },
    close: () =>
      (closed ??= (async () => {
        signalClosing();
        await app.close().catch((error: unknown) => logger.warn({ err: error }, 'error while closing the HTTP server'));
        await publisher?.close();
        await retention.close();
        await pipeline.close();
      })()),
  };
}

function classify(error: FastifyError | StreamsegError): { status: number; code: string } {
  if (error instanceof HttpError) return { status: error.statusCode, code: error.code };
  if (error instanceof InputError || error instanceof ConfigError) return { status: 400, code: error.code };
  // An uploaded adapter that does not fit the model package is the client's to fix.
  if (error instanceof ModelError && error.code.startsWith('E_ADAPTER_')) return { status: 400, code: error.code };
  if (error instanceof StreamsegError) return { status: error.code === ErrorCode.JOB_PAYLOAD ? 400 : 500, code: error.code };
  if ('validation' in error && error.validation) return { status: 400, code: ErrorCode.BAD_REQUEST };
  const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (error.code === 'FST_REQ_FILE_TOO_LARGE') return { status: 413, code: ErrorCode.UPLOAD_TOO_LARGE };
  return { status, code: status < 500 ? ErrorCode.BAD_REQUEST : ErrorCode.INTERNAL };
}
