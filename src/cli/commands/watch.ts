import type { Command } from 'commander';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { exitWithError } from '../exit.js';
import { configFromFlags } from '../options.js';
import { PipelineClient } from '../../shared/pipeline-client.js';
import { ProgressView } from '../progress-view.js';
import { waitForVideo } from '../video-waiter.js';

/** `streamseg watch <id>`: progress bars per stage until the video is done (exit 0) or failed (exit 1). */
export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .description("show a video's progress per stage until it is done (REDIS_URL)")
    .argument('<videoId>', 'a video id printed by submit or returned by the API')
    .action(async (videoId: string) => {
      let client: PipelineClient | undefined;
      try {
        const config = configFromFlags({});
        if (!config.redisUrl) throw new StreamsegError(ErrorCode.CONFIG, "REDIS_URL is not set: watch reads the cluster's Redis");
        client = await PipelineClient.connect(config, config.redisUrl);
        if (!(await client.states.get(videoId)))
          throw new StreamsegError(ErrorCode.VIDEO_UNKNOWN, `no video ${videoId} (expired, cancelled or never submitted)`);
        const view = new ProgressView(videoId);
        let final;
        try {
          final = await waitForVideo(videoId, client.states, client.queues, { onUpdate: (s) => view.update(s) });
          view.update(final);
        } finally {
          view.stop();
        }
        process.stdout.write(`${videoId} ${final.status}${final.outDir ? ` ${final.outDir}` : ''}\n`);
        await client.close();
        process.exit(0);
      } catch (error) {
        await client?.close();
        exitWithError(error);
      }
    });
}
