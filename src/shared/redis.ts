import { Redis, type RedisOptions } from 'ioredis';

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
