import type { Command } from 'commander';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { createLogger } from '../../shared/logger.js';
import { verifyRedis } from '../../shared/redis.js';
import { closeOnSignals, exitWithError } from '../exit.js';
import { addPipelineOptions, configFromFlags, type PipelineFlags } from '../options.js';
import { startRoles, type Role } from '../roles.js';

const DESCRIPTIONS: Record<Role, string> = {
  producer: 'probe and decode submitted videos into frame jobs',
  worker: 'run the segmentation model on frame jobs',
  sink: 'assemble annotated MP4, masks and report per video',
};

/** `streamseg producer|worker|sink`: one long-running role against REDIS_URL, until SIGTERM. */
export function registerRoleCommands(program: Command): void {
  for (const role of Object.keys(DESCRIPTIONS) as Role[]) {
    addPipelineOptions(program.command(role).description(`${DESCRIPTIONS[role]} (needs REDIS_URL)`)).action(async (flags: PipelineFlags) => {
      try {
        const config = configFromFlags(flags);
        if (!config.redisUrl) {
          throw new StreamsegError(ErrorCode.CONFIG, `REDIS_URL is not set: the ${role} role needs a shared Redis (e.g. redis://localhost:6379)`);
        }
        // Wrong credentials, TLS trust or an unreachable server: one line and exit 1, not a retry loop.
        await verifyRedis(config.redisUrl);
        const logger = createLogger(config.logLevel);
        const running = await startRoles([role], { config, redisUrl: config.redisUrl, logger });
        logger.info({ role }, `${role} started`);
        closeOnSignals(() => running.close(), config.shutdownGraceMs);
      } catch (error) {
        exitWithError(error);
      }
    });
  }
}
