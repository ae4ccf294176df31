import { Redis, type RedisOptions } from 'ioredis';
import { StreamsegError } from './errors/index.js';

export type { Redis };

export interface RedisConnectionOptions {
  /**
   * Blocking connections (BullMQ workers, stream readers) must retry forever;
   * producers' queues should fail fast instead of buffering while Redis is away.
   * @defaultValue 'worker'
   */
  purpose?: 'worker' | 'producer';
  connectionName?: string;
}

/**
 * Creates an ioredis client with the settings BullMQ requires: `maxRetriesPerRequest: null`
 * for workers, `enableOfflineQueue: false` for producer-side queues, and a capped backoff so
 * every process reconnects by itself after a Redis restart.
 */
export function createRedis(url: string, options: RedisConnectionOptions = {}): Redis {
  const purpose = options.purpose ?? 'worker';
  const settings: RedisOptions = {
    maxRetriesPerRequest: purpose === 'worker' ? null : 3,
    enableOfflineQueue: purpose === 'worker',
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
    connectionName: options.connectionName ?? `streamseg-${purpose}`,
    lazyConnect: false,
  };
  return new Redis(url, settings);
}

/** A Redis URL fit for logs and messages: the password, if any, masked. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/**
 * Resolves once the connection is ready. Producer-purpose connections refuse commands while
 * connecting (no offline queue), so callers wait here first; an unreachable Redis becomes one
 * clear error instead of a retry loop.
 */
export async function waitForRedisReady(redis: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new StreamsegError('E_REDIS', `cannot reach Redis at ${redactRedisUrl(url)} within ${timeoutMs / 1000} s: check REDIS_URL and that redis-server is running`));
    }, timeoutMs);
    redis.once('ready', onReady);
  });
}
