import { z } from 'zod';
import { ConfigError } from './errors/index.js';
import { MERGE_METHODS, type RetrievalOverrides } from './retrieval-options.js';
import { apiTokenProblems } from './api-tokens.js';
import { parseAllowEntry } from './url-policy.js';
import { formatClusterAddress, parseHostPort, redactRedisUrl, type ClusterAddress } from './redis.js';

const intFrom = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const numberFrom = (min: number, max: number) => z.coerce.number().min(min).max(max);

/**
 * Every setting streamseg reads, with its environment variable and default.
 * Flags given on the command line override the environment.
 */
export const configSchema = z.object({
  /**
   * `REDIS_URL` (redis:// or rediss://, AUTH in the URL). Unset: `run` starts its own redis-server.
   * With REDIS_CLUSTER_NODES, loadConfig sets it to the cluster's `redis+cluster://` address
   * (redis.ts), so every role, the API, the CLI and the client connect through a Cluster.
   */
  redisUrl: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  /**
   * `REDIS_CLUSTER_NODES`: a Redis Cluster's seed nodes, comma-separated, each `host:port` or a URL
   * (`redis://[user:password@]host:port`, `rediss://` for TLS) whose scheme and credentials apply to
   * every node; the rest of the cluster is discovered. Parsed into a `redis+cluster://` address.
   * Exclusive with REDIS_URL.
   */
  redisClusterNodes: z
    .union([z.string(), z.array(z.string())])
    .transform((value, ctx) => {
      const entries = (Array.isArray(value) ? value : value.split(',')).map((t) => t.trim()).filter(Boolean);
      const cluster = parseClusterNodes(entries);
      for (const problem of cluster.problems) ctx.addIssue({ code: 'custom', message: problem });
      return cluster.problems.length > 0 ? z.NEVER : formatClusterAddress(cluster.address);
    })
    .optional(),
  /** `STREAMSEG_MODEL`: the model package directory. @defaultValue `models/default` */
  modelDir: z.string().min(1).default('models/default'),
  /** `STREAMSEG_OUT`: where a video's outputs are written, one folder per video id unless `run --out`. @defaultValue `out` */
  outDir: z.string().min(1).default('out'),
  /** `STREAMSEG_FPS`: resample to this frame rate; unset keeps the source rate. */
  fps: numberFrom(0.1, 240).optional(),
  /** `STREAMSEG_BATCH_FRAMES`: most consecutive frames of one scene in one frames job. @defaultValue 8 */
  batchFrames: intFrom(1, 256).default(8),
  /** `STREAMSEG_SCENE_THRESHOLD`: histogram distance (0..1) above which a frame starts a new scene. @defaultValue 0.3 */
  sceneThreshold: numberFrom(0, 1).default(0.3),
  /** `STREAMSEG_MIN_SCENE_FRAMES`: a cut closer than this to the last one is ignored. @defaultValue 4 */
  minSceneFrames: intFrom(1).default(4),
  /**
   * `STREAMSEG_HIGH_WATER_FRAMES`: the producer pauses while this many frames of a video are in
   * Redis (decoded, and not yet checkpointed by the sink). 512 so that the sink's segments can be
   * 256 frames (a segment is at most half of it); for a file the sink decodes itself a frame in
   * Redis is its model input and mask (~115 kB at 640x360), and the bytes mark below still binds
   * for frames that carry their source. @defaultValue 512
   */
  highWaterFrames: intFrom(1).default(512),
  /**
   * `STREAMSEG_HIGH_WATER_BYTES`: same, in bytes of frame data (source + model input). Frames the
   * sink has written count until their segment is checkpointed, and the sink shortens its segments
   * to half of what the two marks admit, so a video's frame data in Redis stays within this.
   * @defaultValue 268435456 (256 MiB)
   */
  highWaterBytes: intFrom(1024 * 1024).default(256 * 1024 * 1024),
  /** `STREAMSEG_FRAME_TTL_SECONDS`: lifetime of every per-frame key, so a dead video never leaks memory. @defaultValue 3600 */
  frameTtlSeconds: intFrom(10).default(3600),
  /** `STREAMSEG_OVERLAY_ALPHA`: opacity of the class palette over the source frame. @defaultValue 0.5 */
  overlayAlpha: numberFrom(0, 1).default(0.5),
  /**
   * `STREAMSEG_SOURCE_FRAMES`: where the sink gets a file's source frames for annotated.mp4.
   * `sink`: it decodes the input file again itself, so source pixels (85% of the bytes a frame
   * sends through Redis) never cross Redis; sinks must be able to read the producers' input
   * files (a shared volume, as in docker-compose.yml). `redis`: the producer stores each source
   * frame in Redis for the sink. URL and live inputs always go through Redis. Read by the
   * producer, which decides per video. @defaultValue sink
   */
  sourceFrames: z.enum(['sink', 'redis']).default('sink'),
  /**
   * `STREAMSEG_SOURCE_HANDOFF_BYTES`: with `sourceFrames=sink`, a process that runs both the
   * producer and the sink (`streamseg run`) has its producer hand each decoded source frame to
   * its sink in memory instead of the sink decoding the file again (shared/source-frame-handoff.ts),
   * holding at most this many bytes of frames at once (a 640x360 frame is 346 kB, 1920x1080
   * 3.1 MB); the producer waits for the sink when they are full. Below 8 frames' worth, and at
   * 0, the sink decodes itself. @defaultValue 67108864 (64 MiB)
   */
  sourceHandoffBytes: intFrom(0).default(64 * 1024 * 1024),
  /**
   * `STREAMSEG_ENCODER_PRESET`: x264 preset of annotated.mp4. `superfast` costs ~3 ms less CPU per
   * 640x360 frame than `veryfast` for ~8% larger files, on a pipeline that shares its cores with
   * inference; the sinks of one video must agree (segments are joined without re-encoding).
   * @defaultValue `superfast`
   */
  encoderPreset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow']).default('superfast'),
  /** `STREAMSEG_EXECUTION_PROVIDER`: `cuda` falls back to `cpu` (with a log line) when CUDA is absent. @defaultValue `cpu` */
  executionProvider: z.enum(['cpu', 'cuda']).default('cpu'),
  /**
   * `STREAMSEG_INTRA_OP_THREADS`: ONNX Runtime threads per session; 0: the segmentation worker
   * splits the cores between its inference threads (at least 1 each), and a single session lets
   * ORT decide. @defaultValue 0
   */
  intraOpThreads: intFrom(0, 256).default(0),
  /**
   * `STREAMSEG_INFERENCE_THREADS`: segmentation sessions in a worker process, each on its own
   * thread running one run at a time; with more than one, each batch is split into runs of 2
   * frames spread over them. On a 2-core machine that also decodes and encodes, two
   * single-threaded sessions segment more frames per second than one session with two threads
   * (bench/README.md) in about the same memory. CPU only: on CUDA one session runs whole batches.
   * @defaultValue 2
   */
  inferenceThreads: intFrom(1, 64).default(2),
  /**
   * `STREAMSEG_WORKER_CONCURRENCY`: frames jobs a worker process runs at once. Inference still runs
   * one batch at a time; a second job fetches its frames and stores its masks while the first one's
   * batch is in the network, so the model does not sit idle between jobs. @defaultValue 2
   */
  workerConcurrency: intFrom(1, 64).default(2),
  /** `STREAMSEG_JOB_ATTEMPTS`: attempts per job before it is failed. @defaultValue 3 */
  jobAttempts: intFrom(1, 100).default(3),
  /** `STREAMSEG_STREAM_MAXLEN`: approximate cap of each video's Redis Stream of frame records. @defaultValue 100000 */
  streamMaxLen: intFrom(100).default(100_000),
  /** `STREAMSEG_RETRIEVAL_TOP_K`: most adapters merged per scene. @defaultValue 2 (see retrieval-options.ts) */
  retrievalTopK: intFrom(1, 32).optional(),
  /** `STREAMSEG_RETRIEVAL_METRIC`: `cosine` or `l2` distance to adapter centroids. @defaultValue `cosine` */
  retrievalMetric: z.enum(['cosine', 'l2']).optional(),
  /** `STREAMSEG_RETRIEVAL_WEIGHTING`: `softmax`, `inverse` or `uniform` merge weights. @defaultValue `inverse` */
  retrievalWeighting: z.enum(['softmax', 'inverse', 'uniform']).optional(),
  /** `STREAMSEG_RETRIEVAL_TAU`: temperature of softmax weighting. @defaultValue 0.02 */
  retrievalTemperature: numberFrom(1e-6, 1e6).optional(),
  /** `STREAMSEG_RETRIEVAL_MAX_DISTANCE`: adapters farther than this are not used; unset: the default in retrieval-options.ts (0.5). */
  retrievalMaxDistance: numberFrom(0, 1e6).optional(),
  /** `STREAMSEG_RETRIEVAL_GUARD_MARGIN`: confidence guard margin (see retrieval-options.ts guardMargin); unset: the default there. */
  retrievalGuardMargin: numberFrom(-1, 1).optional(),
  /** `STREAMSEG_MERGE_METHOD`: `linear`, `cat` or `svd`. @defaultValue `cat` */
  mergeMethod: z.enum(MERGE_METHODS).optional(),
  /** `STREAMSEG_EMBEDDING_FRAMES`: first frames of a scene its embedding averages. @defaultValue 4 */
  embeddingFrames: intFrom(1, 64).default(4),
  /** `STREAMSEG_ADAPTER_CACHE_BYTES`: byte budget of each worker's merged-adapter cache. @defaultValue 67108864 (64 MiB) */
  adapterCacheBytes: intFrom(0).default(64 * 1024 * 1024),
  /**
   * `STREAMSEG_LOCK_DURATION_MS`: how long a job's lock lives without renewal (renewed every half of it).
   * A process that dies (SIGKILL, power loss) holds its jobs this long before they count as stalled.
   * @defaultValue 30000
   */
  lockDurationMs: intFrom(1000, 3_600_000).default(30_000),
  /**
   * `STREAMSEG_STALLED_INTERVAL_MS`: how often each worker looks for stalled jobs (lock expired, job
   * still active) and puts them back in the queue. Recovery after a crash takes at most
   * lockDuration + stalledInterval. @defaultValue 30000
   */
  stalledIntervalMs: intFrom(100, 3_600_000).default(30_000),
  /**
   * `STREAMSEG_SHUTDOWN_GRACE_MS`: on SIGTERM/SIGINT a role finishes or hands back its current work
   * within this time; past it the process exits with code 1 (its jobs are recovered as stalled).
   * @defaultValue 10000
   */
  shutdownGraceMs: intFrom(100, 600_000).default(10_000),
  /**
   * `STREAMSEG_SINK_SEGMENT_FRAMES`: the sink encodes annotated.mp4 in segments of this many frames,
   * each closed with a checkpoint in Redis; a sink that takes a video over re-encodes from the last
   * checkpoint. Frames stay in Redis until their segment is checkpointed, so a segment is at most
   * half of the frames the high-water marks admit for the video. 256 rather than 64: each segment
   * starts an x264 encoder (~95 ms of CPU), and 1200 frames at 640x360 took 2.6 ms less CPU per
   * frame (bench/README.md); the price is up to 256 frames re-encoded after a sink crash and a
   * coarser in-progress HLS preview (~10 s segments at 24 fps). @defaultValue 256
   */
  sinkSegmentFrames: intFrom(1, 100_000).default(256),
  /**
   * `STREAMSEG_API_TOKENS`: comma-separated bearer tokens `serve` accepts, each `<token>` or
   * `<token>:<scope>` with scope `read`, `submit` or `admin` (see api-tokens.ts); a token without a
   * scope is `admin`, as every token was before scopes. `serve` refuses to start without one.
   */
  apiTokens: z
    .union([z.string(), z.array(z.string())])
    .transform((value) => (Array.isArray(value) ? value : value.split(',')).map((t) => t.trim()).filter(Boolean))
    .superRefine((entries, ctx) => {
      for (const problem of apiTokenProblems(entries)) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default([]),
  /**
   * `STREAMSEG_URL_ALLOW`: comma-separated CIDRs, addresses, host names or `.suffix`es that URLs
   * submitted through the API may reach although they are not public unicast (loopback, private,
   * link-local, multicast… are refused by default), e.g. `192.168.10.0/24,camera.lan`. @defaultValue none
   */
  urlAllow: z
    .union([z.string(), z.array(z.string())])
    .transform((value) => (Array.isArray(value) ? value : value.split(',')).map((t) => t.trim()).filter(Boolean))
    .superRefine((entries, ctx) => {
      for (const entry of entries) {
        if (!parseAllowEntry(entry)) ctx.addIssue({ code: 'custom', message: `"${entry}" is neither a CIDR (10.0.0.0/8), an IP address nor a host name` });
      }
    })
    .default([]),
  /** `STREAMSEG_HTTP_HEADERS_TIMEOUT_MS`: a client must send its request headers within this time, or the connection is closed. @defaultValue 10000 */
  httpHeadersTimeoutMs: intFrom(1000, 600_000).default(10_000),
  /**
   * `STREAMSEG_HTTP_IDLE_TIMEOUT_MS`: a connection on which nothing moves (a stalled body, an idle
   * keep-alive) for this long is closed; event streams send a keep-alive more often. @defaultValue 20000
   */
  httpIdleTimeoutMs: intFrom(1000, 3_600_000).default(20_000),
  /** `STREAMSEG_HTTP_REQUEST_TIMEOUT_MS`: the whole request (an upload included) must arrive within this time. @defaultValue 600000 */
  httpRequestTimeoutMs: intFrom(1000, 86_400_000).default(600_000),
  /**
   * `STREAMSEG_TOKEN_MAX_VIDEOS`: videos one API token may have running at once (queued, decoding
   * or segmenting; a live one until it ends); past it a submission answers 429. 0: no limit. @defaultValue 8
   */
  tokenMaxVideos: intFrom(0, 1_000_000).default(8),
  /** `STREAMSEG_TOKEN_SUBMISSIONS_PER_MINUTE`: submissions one API token may make in any 60 s; past it 429 with Retry-After. 0: no limit. @defaultValue 60 */
  tokenSubmissionsPerMinute: intFrom(0, 1_000_000).default(60),
  /**
   * `STREAMSEG_UPLOAD_RETENTION_SECONDS`: an uploaded video's file is deleted this long after its
   * video finished (done or failed); the outputs stay. 0: deleted as soon as it finishes. @defaultValue 86400
   */
  uploadRetentionSeconds: intFrom(0).default(86_400),
  /** `PORT`: the port `serve` listens on. @defaultValue 8080 */
  port: intFrom(0, 65535).default(8080),
  /** `STREAMSEG_API_HOST`: the address `serve` binds. @defaultValue `0.0.0.0` */
  apiHost: z.string().min(1).default('0.0.0.0'),
  /** `STREAMSEG_UPLOAD_DIR`: where uploaded videos are stored (must be readable by producers); unset: `<outDir>/uploads`. */
  uploadDir: z.string().min(1).optional(),
  /** `STREAMSEG_UPLOAD_MAX_BYTES`: largest accepted upload. @defaultValue 1073741824 (1 GiB) */
  uploadMaxBytes: intFrom(1024).default(1024 * 1024 * 1024),
  /** `STREAMSEG_DEDUP_SECONDS`: the same submission (content or URL, and options) within this window gets the same id. @defaultValue 600 */
  dedupSeconds: intFrom(0).default(600),
  /** `STREAMSEG_METRICS_PUBLISH_MS`: how often each process publishes its metrics to Redis for the API's /metrics; 0 = never. @defaultValue 5000 */
  metricsPublishMs: intFrom(0).default(5000),
  /**
   * `STREAMSEG_LIVE_DROP_POLICY`: what a live video does with frames while the workers are behind
   * (more than STREAMSEG_LIVE_MAX_IN_FLIGHT frames not yet emitted by the sink); a camera cannot be
   * paused, so frames are dropped instead of queued. `drop-oldest`: the oldest frame still waiting
   * for a worker is discarded for the new one; `keep-latest`: new frames wait in a one-frame slot
   * that the next arrival overwrites, the latest goes when there is room; `every-nth`: only every
   * Nth frame (STREAMSEG_LIVE_DROP_EVERY) is admitted while behind. @defaultValue `drop-oldest`
   */
  liveDropPolicy: z.enum(['drop-oldest', 'keep-latest', 'every-nth']).default('drop-oldest'),
  /** `STREAMSEG_LIVE_DROP_EVERY`: N of the `every-nth` policy. @defaultValue 3 */
  liveDropEvery: intFrom(2, 1000).default(3),
  /** `STREAMSEG_LIVE_MAX_IN_FLIGHT`: frames of a live video captured but not yet emitted before frames are dropped. @defaultValue 4 */
  liveMaxInFlight: intFrom(1, 10_000).default(4),
  /** `STREAMSEG_LIVE_RECONNECT_MIN_MS`: first wait before reopening a live source that dropped; doubles per failed try. @defaultValue 250 */
  liveReconnectMinMs: intFrom(10, 600_000).default(250),
  /** `STREAMSEG_LIVE_RECONNECT_MAX_MS`: longest wait between two tries. @defaultValue 5000 */
  liveReconnectMaxMs: intFrom(10, 3_600_000).default(5000),
  /**
   * `STREAMSEG_LIVE_END_AFTER_SECONDS`: a live source that has delivered no frame for this long
   * (reconnecting all the while) counts as ended, and its video is finished like a stopped one;
   * 0: wait for `streamseg stop` forever. @defaultValue 60
   */
  liveEndAfterSeconds: intFrom(0).default(60),
  /**
   * `STREAMSEG_PRODUCER_CONCURRENCY`: file videos one producer process decodes at once. Live videos
   * have their own pool (STREAMSEG_PRODUCER_LIVE_CONCURRENCY). @defaultValue 1
   */
  producerConcurrency: intFrom(1, 256).default(1),
  /**
   * `STREAMSEG_PRODUCER_LIVE_CONCURRENCY`: live videos one producer process reads at once, in a pool
   * apart from files (STREAMSEG_PRODUCER_CONCURRENCY), so live streams never hold the file slots;
   * a live video beyond it waits in the queue. @defaultValue 2
   */
  producerLiveConcurrency: intFrom(1, 256).default(2),
  /**
   * `STREAMSEG_LIVE_CONNECT_TIMEOUT_MS`: a live source that has not delivered its first video
   * within this time (refused, unreachable, silent) fails the video at once with E_LIVE_CONNECT, no
   * retries; a source that dropped after delivering video reconnects as before. @defaultValue 10000
   */
  liveConnectTimeoutMs: intFrom(500, 600_000).default(10_000),
  /** `STREAMSEG_LIVE_HLS_LIST_SIZE`: segments (1 s each) in the rolling live playlist. @defaultValue 6 */
  liveHlsListSize: intFrom(2, 1000).default(6),
  /** `LOG_LEVEL`. @defaultValue `info` */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type StreamsegConfig = z.infer<typeof configSchema>;

/** BullMQ worker options every role takes from config (lock renewal and stalled-job recovery). */
export function jobLockOptions(config: Pick<StreamsegConfig, 'lockDurationMs' | 'stalledIntervalMs'>): { lockDuration: number; stalledInterval: number } {
  return { lockDuration: config.lockDurationMs, stalledInterval: config.stalledIntervalMs };
}
export type ConfigOverrides = { [K in keyof StreamsegConfig]?: StreamsegConfig[K] | string | undefined };

const ENV_NAMES: Record<keyof StreamsegConfig, string> = {
  redisUrl: 'REDIS_URL',
  redisClusterNodes: 'REDIS_CLUSTER_NODES',
  modelDir: 'STREAMSEG_MODEL',
  outDir: 'STREAMSEG_OUT',
  fps: 'STREAMSEG_FPS',
  batchFrames: 'STREAMSEG_BATCH_FRAMES',
  sceneThreshold: 'STREAMSEG_SCENE_THRESHOLD',
  minSceneFrames: 'STREAMSEG_MIN_SCENE_FRAMES',
  highWaterFrames: 'STREAMSEG_HIGH_WATER_FRAMES',
  highWaterBytes: 'STREAMSEG_HIGH_WATER_BYTES',
  frameTtlSeconds: 'STREAMSEG_FRAME_TTL_SECONDS',
  overlayAlpha: 'STREAMSEG_OVERLAY_ALPHA',
  sourceFrames: 'STREAMSEG_SOURCE_FRAMES',
  sourceHandoffBytes: 'STREAMSEG_SOURCE_HANDOFF_BYTES',
  encoderPreset: 'STREAMSEG_ENCODER_PRESET',
  executionProvider: 'STREAMSEG_EXECUTION_PROVIDER',
  intraOpThreads: 'STREAMSEG_INTRA_OP_THREADS',
  inferenceThreads: 'STREAMSEG_INFERENCE_THREADS',
  workerConcurrency: 'STREAMSEG_WORKER_CONCURRENCY',
  jobAttempts: 'STREAMSEG_JOB_ATTEMPTS',
  streamMaxLen: 'STREAMSEG_STREAM_MAXLEN',
  retrievalTopK: 'STREAMSEG_RETRIEVAL_TOP_K',
  retrievalMetric: 'STREAMSEG_RETRIEVAL_METRIC',
  retrievalWeighting: 'STREAMSEG_RETRIEVAL_WEIGHTING',
  retrievalTemperature: 'STREAMSEG_RETRIEVAL_TAU',
  retrievalMaxDistance: 'STREAMSEG_RETRIEVAL_MAX_DISTANCE',
  retrievalGuardMargin: 'STREAMSEG_RETRIEVAL_GUARD_MARGIN',
  mergeMethod: 'STREAMSEG_MERGE_METHOD',
  embeddingFrames: 'STREAMSEG_EMBEDDING_FRAMES',
  adapterCacheBytes: 'STREAMSEG_ADAPTER_CACHE_BYTES',
  lockDurationMs: 'STREAMSEG_LOCK_DURATION_MS',
  stalledIntervalMs: 'STREAMSEG_STALLED_INTERVAL_MS',
  shutdownGraceMs: 'STREAMSEG_SHUTDOWN_GRACE_MS',
  sinkSegmentFrames: 'STREAMSEG_SINK_SEGMENT_FRAMES',
  apiTokens: 'STREAMSEG_API_TOKENS',
  urlAllow: 'STREAMSEG_URL_ALLOW',
  httpHeadersTimeoutMs: 'STREAMSEG_HTTP_HEADERS_TIMEOUT_MS',
  httpIdleTimeoutMs: 'STREAMSEG_HTTP_IDLE_TIMEOUT_MS',
  httpRequestTimeoutMs: 'STREAMSEG_HTTP_REQUEST_TIMEOUT_MS',
  tokenMaxVideos: 'STREAMSEG_TOKEN_MAX_VIDEOS',
  tokenSubmissionsPerMinute: 'STREAMSEG_TOKEN_SUBMISSIONS_PER_MINUTE',
  uploadRetentionSeconds: 'STREAMSEG_UPLOAD_RETENTION_SECONDS',
  port: 'PORT',
  apiHost: 'STREAMSEG_API_HOST',
  uploadDir: 'STREAMSEG_UPLOAD_DIR',
  uploadMaxBytes: 'STREAMSEG_UPLOAD_MAX_BYTES',
  dedupSeconds: 'STREAMSEG_DEDUP_SECONDS',
  metricsPublishMs: 'STREAMSEG_METRICS_PUBLISH_MS',
  liveDropPolicy: 'STREAMSEG_LIVE_DROP_POLICY',
  liveDropEvery: 'STREAMSEG_LIVE_DROP_EVERY',
  liveMaxInFlight: 'STREAMSEG_LIVE_MAX_IN_FLIGHT',
  liveReconnectMinMs: 'STREAMSEG_LIVE_RECONNECT_MIN_MS',
  liveReconnectMaxMs: 'STREAMSEG_LIVE_RECONNECT_MAX_MS',
  liveEndAfterSeconds: 'STREAMSEG_LIVE_END_AFTER_SECONDS',
  liveHlsListSize: 'STREAMSEG_LIVE_HLS_LIST_SIZE',
  producerConcurrency: 'STREAMSEG_PRODUCER_CONCURRENCY',
  producerLiveConcurrency: 'STREAMSEG_PRODUCER_LIVE_CONCURRENCY',
  liveConnectTimeoutMs: 'STREAMSEG_LIVE_CONNECT_TIMEOUT_MS',
  logLevel: 'LOG_LEVEL',
};

/**
 * Reads the environment, applies overrides (command-line flags), validates once.
 * Throws a ConfigError listing every bad value, each with the variable that set it.
 */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): StreamsegConfig {
  const raw: Record<string, unknown> = {};
  const source: Record<string, string> = {};
  for (const [key, envName] of Object.entries(ENV_NAMES)) {
    const fromFlag = overrides[key as keyof StreamsegConfig];
    const fromEnv = env[envName];
    if (fromFlag !== undefined) {
      raw[key] = fromFlag;
      source[key] = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw[key] = fromEnv;
      source[key] = envName;
    }
  }
  const parsed = configSchema.safeParse(raw);
  if (parsed.success && !(parsed.data.redisUrl && parsed.data.redisClusterNodes)) {
    return parsed.data.redisClusterNodes ? { ...parsed.data, redisUrl: parsed.data.redisClusterNodes } : parsed.data;
  }
  const issues = parsed.success
    ? [{ path: ['redisClusterNodes'], message: 'set either REDIS_URL (one server) or REDIS_CLUSTER_NODES (a cluster), not both' }]
    : parsed.error.issues;
  const problems = issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    const from = source[key] ?? ENV_NAMES[key as keyof StreamsegConfig] ?? key;
    // Tokens are secrets: the line names the entry (issue.message), never the list.
    const value =
      key === 'apiTokens'
        ? '(hidden)'
        : key === 'redisClusterNodes'
          ? JSON.stringify(String(raw[key]).replace(/\/\/[^@/]*@/g, '//***@'))
          : JSON.stringify(raw[key]);
    return `${from}=${value}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/**
 * REDIS_CLUSTER_NODES entries → one cluster address, or a message per bad entry: `host:port` or a
 * redis:// / rediss:// URL without a database number; URL entries must agree on scheme and
 * credentials (they are the cluster's), and plain entries take them.
 */
export function parseClusterNodes(entries: readonly string[]): { address: ClusterAddress; problems: string[] } {
  const problems: string[] = [];
  const address: ClusterAddress = { tls: false, nodes: [] };
  let auth: string | undefined;
  if (entries.length === 0) problems.push('no node given: list host:port,host:port,...');
  for (const entry of entries) {
    const plain = parseHostPort(entry);
    if (plain) {
      address.nodes.push(plain);
      continue;
    }
    const shown = redactRedisUrl(entry);
    let url: URL | undefined;
    try {
      url = /^rediss?:\/\//.test(entry) ? new URL(entry) : undefined;
    } catch {
      url = undefined;
    }
    const node = url ? parseHostPort(`${url.hostname}:${url.port || '6379'}`) : null;
    if (!url || !node) {
      problems.push(`"${shown}" is neither host:port nor a redis:// or rediss:// URL of one node`);
      continue;
    }
    if (url.pathname !== '' && url.pathname !== '/' && url.pathname !== '/0') {
      problems.push(`"${shown}": a cluster has database 0 only; drop the ${url.pathname}`);
      continue;
    }
    const tls = url.protocol === 'rediss:';
    const username = decodeURIComponent(url.username) || undefined;
    const password = url.password ? decodeURIComponent(url.password) : undefined;
    const key = JSON.stringify([tls, username, password]);
    if (auth !== undefined && auth !== key) {
      problems.push(`"${shown}": every URL entry must have the same scheme and credentials (they are the cluster's)`);
      continue;
    }
    auth = key;
    Object.assign(address, { tls, username, password });
    address.nodes.push(node);
  }
  return { address, problems };
}

/** The deployment's retrieval defaults from config: only the keys that were set (jobs may still override them). */
export function retrievalDefaultsFromConfig(config: StreamsegConfig): RetrievalOverrides {
  const defaults: RetrievalOverrides = {
    topK: config.retrievalTopK,
    metric: config.retrievalMetric,
    weighting: config.retrievalWeighting,
    temperature: config.retrievalTemperature,
    maxDistance: config.retrievalMaxDistance,
    guardMargin: config.retrievalGuardMargin,
    method: config.mergeMethod,
  };
  return Object.fromEntries(Object.entries(defaults).filter(([, value]) => value !== undefined)) as RetrievalOverrides;
}
