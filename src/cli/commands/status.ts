import type { Command } from 'commander';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { exitWithError } from '../exit.js';
import { configFromFlags } from '../options.js';
import { PipelineClient } from '../../shared/pipeline-client.js';

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description("print a table of queues (job counts) and of the workers connected to them, or one video's progress per stage")
    .argument('[videoId]', 'a video id printed by submit')
    .option('--json', 'print JSON', false)
    .action(async (videoId: string | undefined, flags: { json: boolean }) => {
      let client: PipelineClient | undefined;
      let failed = false;
      try {
        const config = configFromFlags({});
        if (!config.redisUrl) throw new StreamsegError(ErrorCode.CONFIG, "REDIS_URL is not set: status reads the cluster's Redis");
        client = await PipelineClient.connect(config, config.redisUrl);
        if (videoId) {
          const state = await client.states.get(videoId);
          if (!state) throw new StreamsegError(ErrorCode.VIDEO_UNKNOWN, `no video ${videoId} (expired or never submitted)`);
          failed = state.status === 'failed';
          if (flags.json) process.stdout.write(`${JSON.stringify(state)}\n`);
          else {
            // A live source has no length; say how many frames it dropped instead.
            const total = state.live ? '?' : (state.totalFrames ?? state.expectedFrames ?? '?');
            const live = state.live ? ` live, ${state.droppedFrames ?? 0} frames dropped` : '';
            // The source's rate and the output's (--fps) apart: they differ when resampling.
            const rates = state.fps === undefined ? '' : `  fps     ${state.sourceFps ?? state.fps} source, ${state.fps} output\n`;
            process.stdout.write(
              `${videoId} ${state.status}${live}${state.error ? ` (${state.error})` : ''}\n` +
                rates +
                `  decode  ${state.decodedFrames}/${total}\n  segment ${state.segmentedFrames}/${total}\n  sink    ${state.sinkFrames}/${total}\n`,
            );
          }
        } else {
          const rows = await Promise.all(
            Object.values(client.queues).map(async (q) => ({
              queue: q.name,
              ...(await q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed')),
              workers: (await q.getWorkers()).length,
            })),
          );
          const workers = (
            await Promise.all(
              Object.values(client.queues).map(async (q) =>
                (await q.getWorkers()).map((w) => ({
                  queue: q.name,
                  name: w.name ?? '',
                  addr: w.addr ?? '',
                  ageSeconds: Number(w.age ?? 0),
                  idleSeconds: Number(w.idle ?? 0),
                })),
              ),
            )
          ).flat();
          if (flags.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
          else {
            console.table(rows);
            if (workers.length > 0) console.table(workers);
            else process.stdout.write('no workers connected\n');
          }
        }
        await client.close();
        // A failed video is a failure for scripts too: the reason is on the line above.
        process.exit(failed ? 1 : 0);
      } catch (error) {
        await client?.close();
        exitWithError(error);
      }
    });
}
