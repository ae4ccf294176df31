import type { Command } from 'commander';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { LiveFrameLog } from '../../shared/live-frame-log.js';
import { isLiveJob } from '../../producers/live-source.js';
import { exitWithError } from '../exit.js';
import { configFromFlags } from '../options.js';
import { PipelineClient } from '../../shared/pipeline-client.js';
import { waitForVideo } from '../video-waiter.js';

interface StopFlags {
  wait: boolean;
}

/**
 * `streamseg stop <id>`: a live video ends gracefully (the producer stops reading the source,
 * the sink emits what is in flight, closes the playlist and writes report.json; status done).
 * A file video is cancelled the way the API's DELETE does it (the tombstone producers watch;
 * the video is marked failed with E_CANCELLED).
 */
export function registerStopCommand(program: Command): void {
  program
    .command('stop')
    .description('end a live video gracefully (outputs finished), or cancel a file video')
    .argument('<videoId>', 'a video id printed by submit or run')
    .option('--no-wait', 'return at once instead of waiting until the video is done')
    .action(async (videoId: string, flags: StopFlags) => {
      let client: PipelineClient | undefined;
      try {
        const config = configFromFlags({});
        if (!config.redisUrl) throw new StreamsegError(ErrorCode.CONFIG, "REDIS_URL is not set: stop needs the cluster's Redis");
        client = await PipelineClient.connect(config, config.redisUrl);
        const state = await client.states.get(videoId);
        if (!state) throw new StreamsegError(ErrorCode.VIDEO_UNKNOWN, `no video ${videoId} in this Redis (expired or never submitted)`);
        if (state.status === 'done' || state.status === 'failed') {
          process.stdout.write(`${videoId} ${state.status}\n`);
        } else if (state.live || isLiveJob((await client.queues.videos.getJob(videoId))?.data)) {
          await new LiveFrameLog(client.redis, config.frameTtlSeconds).requestStop(videoId);
          if (flags.wait) await waitForVideo(videoId, client.states, client.queues);
          process.stdout.write(`${videoId} ${flags.wait ? 'done' : 'stopping'}\n`);
        } else {
          await client.states.markCancelled(videoId);
          await client.states.markFailed(videoId, `${ErrorCode.CANCELLED}: stopped with streamseg stop`);
          process.stdout.write(`${videoId} cancelled\n`);
        }
        await client.close();
        process.exit(0);
      } catch (error) {
        await client?.close();
        exitWithError(error);
      }
    });
}
