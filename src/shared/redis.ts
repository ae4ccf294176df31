import { Redis, type RedisOptions } from 'ioredis';
import { ErrorCode, StreamsegError } from './errors/index.js';

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
export async function waitForRedisReady(redis: Redis, url: string, timeoutMs = 10_000, options: { failFast?: boolean } = {}): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const done = (error?: StreamsegError) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => done();
    // Wrong credentials or an untrusted certificate will not fix themselves: say so at once.
    const onError = (error: Error) => {
      const fatal = fatalConnectionError(error, url) ?? (options.failFast ? unreachableError(error, url) : null);
      if (fatal) done(fatal);
    };
    const timer = setTimeout(
      () =>
        done(
          new StreamsegError(
            ErrorCode.REDIS,
            `cannot reach Redis at ${redactRedisUrl(url)} within ${timeoutMs / 1000} s: check REDIS_URL and that redis-server is running`,
          ),
        ),
      timeoutMs,
    );
    redis.once('ready', onReady);
    redis.on('error', onError);
  });
}

/** A connection error no retry can fix (authentication, TLS trust), as a one-line streamseg error; null otherwise. */
export function fatalConnectionError(error: Error, url: string): StreamsegError | null {
  const where = redactRedisUrl(url);
  const message = error.message.split('\n')[0] ?? '';
  if (/WRONGPASS|NOAUTH|invalid password|AUTH.*without any password/i.test(message)) {
    return new StreamsegError(
      ErrorCode.REDIS_AUTH,
      `Redis at ${where} refused the credentials (${message}): set the password in REDIS_URL (redis://:PASSWORD@host:port or redis://USER:PASSWORD@host:port)`,
    );
  }
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/i.test(code) || /certificate|wrong version number|SSL routines/i.test(message)) {
    return new StreamsegError(
      ErrorCode.REDIS_TLS,
      `TLS to Redis at ${where} failed (${code || message}): use rediss:// only for a TLS port, and trust its CA (NODE_EXTRA_CA_CERTS=ca.pem)`,
    );
  }
  return null;
}

/**
 * Nothing listens at the address, or the host is unknown: a one-line streamseg error for commands
 * that answer a user now (status, submit, serve) rather than wait for Redis to come back; null for
 * other errors.
 */
export function unreachableError(error: Error, url: string): StreamsegError | null {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (!/^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/.test(code)) return null;
  const why = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'unknown host' : 'host unreachable';
  return new StreamsegError(ErrorCode.REDIS, `cannot reach Redis at ${redactRedisUrl(url)} (${why}): check REDIS_URL and that redis-server is running there`);
}

/** Connects once and waits until Redis answers (or fails with a one-line reason), then disconnects. */
export async function verifyRedis(url: string, timeoutMs = 10_000, options: { failFast?: boolean } = {}): Promise<void> {
  const probe = createRedis(url, { purpose: 'producer', connectionName: 'streamseg-check' });
  probe.on('error', () => undefined);
  try {
    await waitForRedisReady(probe, url, timeoutMs, options);
  } finally {
    probe.disconnect();
  }
}
