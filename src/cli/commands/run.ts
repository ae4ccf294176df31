import path from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../../shared/logger.js';
import { loadModelPackage } from '../../shared/model-manifest.js';
import { verifyRedis } from '../../shared/redis.js';
import { assertClassesInModel } from '../../shared/video-classes.js';
import { embeddedRedisNotice, startEmbeddedRedis, type EmbeddedRedis } from '../embedded-redis.js';
import { closeOnSignals, exitWithError } from '../exit.js';
import { addPipelineOptions, addVideoOptions, configFromFlags, videoOptionsFromFlags, type PipelineFlags, type VideoFlags } from '../options.js';
import { PipelineClient } from '../../shared/pipeline-client.js';
import { ProgressView } from '../progress-view.js';
import { startRoles, type RunningRoles } from '../roles.js';
import { waitForVideo } from '../video-waiter.js';
import { LiveFrameLog } from '../../shared/live-frame-log.js';
import { isLiveJob } from '../../producers/live-source.js';
import { addLiveOptions, liveOptionsFromFlags, type LiveFlags } from '../live-options.js';
import { openStdinSource, type StdinSource } from '../stdin-source.js';

interface RunFlags extends PipelineFlags, VideoFlags, LiveFlags {
  progress: boolean;
}

export function registerRunCommand(program: Command): void {
  addLiveOptions(
    addVideoOptions(
      addPipelineOptions(
        program
          .command('run')
          .description('segment one video in this process: producer, worker and sink (own redis-server unless REDIS_URL is set)')
          .argument('<input>', 'video file path, an http/https/rtsp/udp URL, or - for stdin (an MP4/MOV is read to its end first; other streams are live)')
          .option('--out <dir>', 'output directory', 'out')
          .option('--no-progress', 'do not draw progress bars'),
      ),
    ),
  ).action(async (input: string, flags: RunFlags) => {
    try {
      await runVideo(input, flags);
      process.exit(0);
    } catch (error) {
      exitWithError(error);
    }
  });
}

async function runVideo(input: string, flags: RunFlags): Promise<void> {
  // Progress bars and log lines share stderr; keep logs quiet unless asked. 'error', not 'warn':
  // a failed video is reported by the one exit line, and the roles' warnings about the same
  // failure (job failed, with stacks) would only repeat it. LOG_LEVEL=warn shows them.
  const config = configFromFlags(flags, { logLevel: flags.logLevel ?? process.env.LOG_LEVEL ?? 'error' });
  const videoOptions = videoOptionsFromFlags(flags);
  const logger = createLogger(config.logLevel);
  let redis: EmbeddedRedis | undefined;
  let roles: RunningRoles | undefined;
  let client: PipelineClient | undefined;
  let stdin: StdinSource | undefined;
  // A live video asked to end (Ctrl-C, SIGTERM) is stopped gracefully first: outputs finished.
  let requestLiveStop: (() => Promise<void>) | undefined;
  let stopLive: (() => Promise<void>) | undefined;
  const shutdown = async () => {
    await stopLive?.().catch(() => undefined);
    await stdin?.close();
    await client?.close();
    await roles?.close();
    await redis?.stop();
  };
  let body: Promise<void> | undefined;
  closeOnSignals(async () => {
    // A live video ends gracefully: stop it, then let the run finish as it would on its own
    // (output paths printed, everything closed) instead of exiting underneath it.
    // Only ask for the stop here: the run's own wait sees the video end, then closes the
    // client this would otherwise still be polling.
    if (requestLiveStop && stopLive && body) {
      await requestLiveStop();
      await body;
      return;
    }
    await shutdown();
  }, config.shutdownGraceMs);
  body = (async () => {
    try {
      // Options the model cannot honour fail here, before a server starts or a job is queued.
      assertClassesInModel(videoOptions.classes, (await loadModelPackage(config.modelDir)).manifest, '--classes');
      if (config.redisUrl) await verifyRedis(config.redisUrl);
      let redisUrl = config.redisUrl;
      if (!redisUrl) {
        redis = await startEmbeddedRedis();
        redisUrl = redis.url;
        // On a terminal, where a user may want `status` or `watch` beside it; piped or redirected
        // (scripts, CI) stderr carries just the exit line, and the log has the URL (LOG_LEVEL=info).
        logger.info({ redisUrl }, 'own redis-server started');
        if (process.stderr.isTTY) process.stderr.write(embeddedRedisNotice(redisUrl));
      }
      roles = await startRoles(['producer', 'worker', 'sink'], { config, redisUrl, logger });
      client = await PipelineClient.connect(config, redisUrl);
      const outDir = path.resolve(flags.out ?? config.outDir);
      // `-`: an MP4/MOV on stdin is spooled to a temporary file and processed as that file (its
      // index is usually at the end); anything else is a live source, relayed to the producer
      // over loopback HTTP and ended by its EOF.
      if (input === '-') stdin = await openStdinSource(process.stdin);
      const live = liveOptionsFromFlags(flags, stdin?.kind === 'live' ? { endOnEof: true, nativeRate: true } : {});
      const source = stdin ? (stdin.kind === 'live' ? stdin.url : stdin.path) : input;
      const videoId = await client.submitter.submit(source, { outDir, fps: config.fps, ...videoOptions, live });
      const isLive = isLiveJob((await client.queues.videos.getJob(videoId))?.data);
      if (isLive) {
        const liveClient = client;
        requestLiveStop = () => new LiveFrameLog(liveClient.redis, config.frameTtlSeconds).requestStop(videoId);
        stopLive = async () => {
          stopLive = undefined;
          await requestLiveStop?.();
          await waitForVideo(videoId, liveClient.states, liveClient.queues);
        };
        if (config.redisUrl) process.stderr.write(`streamseg: live video ${videoId}; end it with Ctrl-C or \`streamseg stop ${videoId}\`\n`);
      }
      // Bars only on a terminal: piped or redirected (scripts, CI), stderr carries just the exit line.
      const view = flags.progress && process.stderr.isTTY ? new ProgressView(videoId) : undefined;
      try {
        const final = await waitForVideo(videoId, client.states, client.queues, { onUpdate: (s) => view?.update(s) });
        view?.update(final);
      } finally {
        view?.stop();
      }
      stopLive = undefined;
      process.stdout.write(
        `${path.join(outDir, isLive ? 'live/index.m3u8' : 'annotated.mp4')}\n${path.join(outDir, 'masks.ndjson')}\n${path.join(outDir, 'report.json')}\n`,
      );
    } finally {
      await shutdown();
    }
  })();
  await body;
}
