import { Option, type Command } from 'commander';
import { createApiServer, type ApiServer } from '../../api/server.js';
import { StreamsegError } from '../../shared/errors/index.js';
import { createLogger } from '../../shared/logger.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../embedded-redis.js';
import { closeOnSignals, exitWithError } from '../exit.js';
import { addPipelineOptions, configFromFlags, type PipelineFlags } from '../options.js';
import { ROLES, startRoles, type Role, type RunningRoles } from '../roles.js';

interface ServeFlags extends PipelineFlags {
  port?: string;
  host?: string;
  roles?: string;
}

/** `streamseg serve`: the HTTP API, web page, /metrics and bull-board; optionally the pipeline roles in the same process. */
export function registerServeCommand(program: Command): void {
  addPipelineOptions(
    program
      .command('serve')
      .description('HTTP API (/v1), web page (/web/), /metrics, /admin/queues; needs REDIS_URL and STREAMSEG_API_TOKENS')
      .addOption(new Option('--port <n>', 'port to listen on (PORT, default 8080)'))
      .addOption(new Option('--host <address>', 'address to bind (STREAMSEG_API_HOST, default 0.0.0.0)'))
      .addOption(
        new Option('--roles <list>', `also run these roles in this process (comma-separated: ${ROLES.join(',')}, or "all"); without REDIS_URL an embedded redis-server is started`),
      ),
  ).action(async (flags: ServeFlags) => {
    let redis: EmbeddedRedis | undefined;
    let roles: RunningRoles | undefined;
    let server: ApiServer | undefined;
    const shutdown = async () => {
      await server?.close();
      await roles?.close();
      await redis?.stop();
    };
    try {
      const config = configFromFlags(flags, { port: flags.port, apiHost: flags.host });
      const wanted = parseRoles(flags.roles);
      if (!config.redisUrl && wanted.length === 0) {
        throw new StreamsegError('E_CONFIG', 'REDIS_URL is not set: serve needs the cluster\'s Redis (or --roles all for a single-machine setup with its own redis-server)');
      }
      const logger = createLogger(config.logLevel);
      const redisUrl = config.redisUrl ?? (redis = await startEmbeddedRedis({ appendOnly: true })).url;
      closeOnSignals(shutdown, config.shutdownGraceMs);
      if (wanted.length > 0) roles = await startRoles(wanted, { config, redisUrl, logger });
      server = await createApiServer({ config, redisUrl, logger });
      const url = await server.listen(config.port, config.apiHost);
      process.stderr.write(`streamseg API on ${url} (web page ${url}/web/, OpenAPI ${url}/v1/openapi.json, queues ${url}/admin/queues)\n`);
    } catch (error) {
      await shutdown().catch(() => undefined);
      exitWithError(error);
    }
  });
}

function parseRoles(value: string | undefined): Role[] {
  if (!value) return [];
  if (value === 'all') return [...ROLES];
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!(ROLES as readonly string[]).includes(name)) throw new StreamsegError('E_CONFIG', `--roles: unknown role "${name}" (expected ${ROLES.join(', ')} or all)`);
  }
  return names as Role[];
}
