import { Option, type Command } from 'commander';
import { assertApiConfig, createApiServer, type ApiServer } from '../../api/server.js';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { createLogger } from '../../shared/logger.js';
import { verifyRedis } from '../../shared/redis.js';
import { embeddedRedisNotice, startEmbeddedRedis, type EmbeddedRedis } from '../embedded-redis.js';
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
      .description(
        'HTTP API (/v1), web page (/web/), /metrics, /admin/queues; needs STREAMSEG_API_TOKENS, and REDIS_URL unless --roles starts its own redis-server',
      )
      .addOption(new Option('--port <n>', 'port to listen on (PORT, default 8080)'))
      .addOption(new Option('--host <address>', 'address to bind (STREAMSEG_API_HOST, default 0.0.0.0)'))
      .addOption(
        new Option(
          '--roles <list>',
          `also run these roles in this process (comma-separated: ${ROLES.join(',')}, or "all"); without REDIS_URL an embedded redis-server is started`,
        ),
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
        throw new StreamsegError(
          ErrorCode.CONFIG,
          "REDIS_URL is not set: serve needs the cluster's Redis (or --roles all for a single-machine setup with its own redis-server)",
        );
      }
      // Everything that can be checked is checked before a server or a role starts.
      assertApiConfig(config);
      const logger = createLogger(config.logLevel);
      let redisUrl = config.redisUrl;
      if (redisUrl) {
        await verifyRedis(redisUrl, 10_000, { failFast: true });
      } else {
        redis = await startEmbeddedRedis({ appendOnly: true });
        redisUrl = redis.url;
        process.stderr.write(embeddedRedisNotice(redisUrl));
      }
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
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!(ROLES as readonly string[]).includes(name))
      throw new StreamsegError(ErrorCode.CONFIG, `--roles: unknown role "${name}" (expected ${ROLES.join(', ')} or all)`);
  }
  return names as Role[];
}
