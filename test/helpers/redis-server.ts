import { execFile } from 'node:child_process';
import { startEmbeddedRedis } from '../../src/cli/embedded-redis.js';

export interface TestRedisServer {
  /** redis://<host>:<port> */
  url: string;
  /** Stops the server (and removes its directory or container); safe to call twice. */
  stop(): Promise<void>;
}

const REDIS_IMAGE = 'redis:7';
/** Same settings as the local server: throwaway (no RDB, no AOF), never evicts frames. */
const REDIS_ARGS = ['--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'];

let dockerCheck: Promise<boolean> | undefined;

/** Whether `docker info` succeeds (a reachable Docker daemon); asked once per test process. */
function dockerAvailable(): Promise<boolean> {
  return (dockerCheck ??= new Promise((resolve) => {
    execFile('docker', ['info'], { timeout: 15_000 }, (error) => resolve(!error));
  }));
}

/**
 * A throwaway Redis for integration tests. With Docker (`docker info` succeeds) it is a
 * `redis:7` container started through testcontainers, the server a deployment would run;
 * without Docker, a local `redis-server` on a free loopback port (no RDB, no AOF), started
 * the same way `streamseg run` starts its embedded server (spawn, wait for PING), so tests
 * exercise the real start-up path. The local path needs `redis-server` on PATH
 * (apt-get install redis-server).
 */
export async function startRedisServer(): Promise<TestRedisServer> {
  if (await dockerAvailable()) {
    // Loaded only here: machines without Docker never pay for testcontainers' start-up.
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer(REDIS_IMAGE)
      .withCommand(['redis-server', ...REDIS_ARGS])
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
      .start();
    let stopping: Promise<void> | undefined;
    return {
      url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
      stop: () => (stopping ??= container.stop().then(() => undefined)),
    };
  }
  const server = await startEmbeddedRedis({ appendOnly: false });
  return { url: server.url, stop: () => server.stop() };
}
