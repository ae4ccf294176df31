import path from 'node:path';
import type { Command } from 'commander';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { videoIdSchema } from '../../shared/job-schemas.js';
import { loadModelPackage } from '../../shared/model-manifest.js';
import { assertUnderOutputRoot } from '../../shared/output-root.js';
import { assertClassesInModel } from '../../shared/video-classes.js';
import { newVideoId } from '../../shared/video-submitter.js';
import { exitWithError } from '../exit.js';
import { addVideoOptions, configFromFlags, videoOptionsFromFlags, type VideoFlags } from '../options.js';
import { PipelineClient } from '../../shared/pipeline-client.js';
import { ProgressView } from '../progress-view.js';
import { waitForVideo } from '../video-waiter.js';
import { addLiveOptions, liveOptionsFromFlags, type LiveFlags } from '../live-options.js';

interface SubmitFlags extends VideoFlags, LiveFlags {
  id?: string;
  out?: string;
  fps?: string;
  watch: boolean;
}

export function registerSubmitCommand(program: Command): void {
  addLiveOptions(
    addVideoOptions(
      program
        .command('submit')
        .description('queue a video on REDIS_URL and print its id')
        .argument('<input>', 'video file path (readable by the producer), or an http/https/rtsp/udp URL')
        .option('--id <id>', 'video id (letters, digits, _ and -); submitting an id again does not process the video twice')
        .option('--out <dir>', 'output directory under STREAMSEG_OUT (default: $STREAMSEG_OUT/<id>)')
        .option('--fps <n>', 'resample to this frame rate')
        .option('--watch', 'show progress until the video is done', false),
    ),
  ).action(async (input: string, flags: SubmitFlags) => {
    const { config, videoOptions } = (() => {
      try {
        return { config: configFromFlags({ fps: flags.fps }), videoOptions: { ...videoOptionsFromFlags(flags), live: liveOptionsFromFlags(flags) } };
      } catch (error) {
        exitWithError(error);
      }
    })();
    if (!config.redisUrl) exitWithError(new StreamsegError(ErrorCode.CONFIG, "REDIS_URL is not set: submit needs the cluster's Redis"));
    let client: PipelineClient | undefined;
    try {
      // Checked against the model package here when this machine has it (STREAMSEG_MODEL); the
      // workers' model is the judge otherwise, and `--watch` reports their refusal.
      const modelPackage = videoOptions.classes ? await loadModelPackage(config.modelDir).catch(() => undefined) : undefined;
      if (modelPackage) assertClassesInModel(videoOptions.classes, modelPackage.manifest, '--classes');
      client = await PipelineClient.connect(config, config.redisUrl);
      const videoId = flags.id ?? newVideoId();
      const parsedId = videoIdSchema.safeParse(videoId);
      if (!parsedId.success) throw new StreamsegError(ErrorCode.VIDEO_ID, `--id ${JSON.stringify(videoId)}: ${parsedId.error.issues[0]?.message ?? 'invalid'}`);
      // The sinks write only under their STREAMSEG_OUT: say so now rather than fail the video later.
      const outDir = await assertUnderOutputRoot(flags.out ?? path.join(config.outDir, videoId), config.outDir);
      // The decode job's id is the video id, so BullMQ keeps a second submission from running
      // again while the first is known (waiting, active, or kept after it finished).
      if (await client.queues.videos.getJob(videoId)) {
        process.stderr.write(`streamseg: video ${videoId} was already submitted; not queued again\n`);
      } else {
        await client.submitter.submit(input, { videoId, outDir, fps: config.fps, ...videoOptions });
      }
      process.stdout.write(`${videoId}\n`);
      if (flags.watch) {
        const view = new ProgressView(videoId);
        try {
          await waitForVideo(videoId, client.states, client.queues, { onUpdate: (s) => view.update(s) });
        } finally {
          view.stop();
        }
      }
      await client.close();
      process.exit(0);
    } catch (error) {
      await client?.close();
      exitWithError(error);
    }
  });
}
