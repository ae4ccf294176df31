import { startEmbeddedRedis } from '../../src/cli/embedded-redis.js';

export interface TestRedisServer {
  /** redis://127.0.0.1:<port> */
  url: string;
  /** Stops the server and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * A throwaway `redis-server` on a free loopback port (no RDB, no AOF), for integration tests.
 * Starts the same way `streamseg run` starts its embedded server (spawn, wait for PING), so
 * tests exercise the real start-up path. Needs `redis-server` on PATH (apt-get install redis-server).
 */
export async function startRedisServer(): Promise<TestRedisServer> {
  const server = await startEmbeddedRedis({ appendOnly: false });
  return { url: server.url, stop: () => server.stop() };
}
