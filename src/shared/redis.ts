import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ErrorCode, StreamsegError } from './errors/index.js';

export type { Cluster, Redis };

/**
 * A connection to streamseg's Redis: one server (`REDIS_URL`) or a Redis Cluster
 * (`REDIS_CLUSTER_NODES`). Stores take this type; what differs between the two (key scans,
 * the BullMQ prefix) goes through the helpers below, never through `instanceof` elsewhere.
 */
export type RedisConnection = Redis | Cluster;

/**
 * Scheme of a Redis Cluster address (`redis+cluster://[user:password@]host:port,host:port`;
 * `rediss+cluster://` for TLS). config.ts builds it from REDIS_CLUSTER_NODES, so every role,
 * the API, the CLI and the client pass one string around whatever the deployment is.
 */
const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//;

export interface ClusterAddress {
  tls: boolean;
  username?: string;
  password?: string;
  nodes: { host: string; port: number }[];
}

/** Whether `address` names a Redis Cluster (see clusterAddress) rather than one server. */
export function isClusterAddress(address: string): boolean {
  return CLUSTER_SCHEME.test(address);
}

/** `redis+cluster://` address of `cluster`: the one string createRedis opens as an ioredis Cluster. */
export function formatClusterAddress(cluster: ClusterAddress): string {
  const auth =
    cluster.username !== undefined || cluster.password !== undefined
      ? `${encodeURIComponent(cluster.username ?? '')}${cluster.password !== undefined ? `:${encodeURIComponent(cluster.password)}` : ''}@`
      : '';
  const nodes = cluster.nodes.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`).join(',');
  return `${cluster.tls ? 'rediss' : 'redis'}+cluster://${auth}${nodes}`;
}

/** Parses a `redis+cluster://` address (formatClusterAddress); throws a RangeError on anything else. */
export function parseClusterAddress(address: string): ClusterAddress {
  const scheme = CLUSTER_SCHEME.exec(address);
  if (!scheme) throw new RangeError('not a redis+cluster:// address');
  let rest = address.slice(scheme[0].length);
  const at = rest.lastIndexOf('@');
  let username: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(':');
    username = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth) || undefined;
    password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : undefined;
  }
  const nodes = rest.split(',').map((entry) => {
    const node = parseHostPort(entry);
    if (!node) throw new RangeError(`"${entry}" is not host:port`);
    return node;
  });
  return { tls: scheme[1] === 'rediss', username, password, nodes };
}

/** `host:port` or `[v6]:port` → parts; null when it is neither. */
export function parseHostPort(entry: string): { host: string; port: number } | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: (match[1] ?? match[2])!, port };
}

/** Whether `redis` is a Redis Cluster connection. */
export function isCluster(redis: RedisConnection): redis is Cluster {
  return (redis as Cluster).isCluster === true;
}

/**
 * Every key matching `pattern`, by SCAN. On a cluster each master is scanned (SCAN sees one
 * node's keys only): a pattern inside one hash tag (a video's `pattern`) finds its keys on the master of
 * that slot, the others answer nothing.
 */
export async function scanKeys(redis: RedisConnection, pattern: string, count = 500): Promise<string[]> {
  const nodes: Redis[] = isCluster(redis) ? redis.nodes('master') : [redis];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  }
  return keys;
}

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
export function createRedis(address: string, options: RedisConnectionOptions = {}): RedisConnection {
  const purpose = options.purpose ?? 'worker';
  const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5000);
  const connectionName = options.connectionName ?? `streamseg-${purpose}`;
  const maxRetriesPerRequest = purpose === 'worker' ? null : 3;
  if (isClusterAddress(address)) {
    const cluster = parseClusterAddress(address);
    return new Cluster(cluster.nodes, clusterOptions(cluster, { purpose, connectionName, maxRetriesPerRequest, retryStrategy }));
  }
  const settings: RedisOptions = {
    maxRetriesPerRequest,
    enableOfflineQueue: purpose === 'worker',
    retryStrategy,
    connectionName,
    lazyConnect: false,
  };
  return new Redis(address, settings);
}

/**
 * ioredis Cluster settings. A failover (a master gone, its replica promoted after
 * `cluster-node-timeout`) and a resharding (MOVED, ASK, TRYAGAIN) show up as redirections and
 * refused commands: each is retried after a short delay, up to `maxRedirections` times (64 × up
 * to 300 ms covers a promotion of several seconds); the slot map is refreshed on every MOVED.
 */
function clusterOptions(
  cluster: ClusterAddress,
  settings: {
    purpose: 'worker' | 'producer';
    connectionName: string;
    maxRetriesPerRequest: number | null;
    retryStrategy: (times: number) => number;
  },
): ClusterOptions {
  return {
    // Producers' queues fail fast while the cluster is unreachable, as on one server.
    enableOfflineQueue: settings.purpose === 'worker',
    clusterRetryStrategy: settings.retryStrategy,
    maxRedirections: 64,
    retryDelayOnFailover: 300,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 0,
    slotsRefreshTimeout: 2000,
    // Reads and writes go to masters: a replica may lag behind a frame just written.
    scaleReads: 'master',
    redisOptions: {
      maxRetriesPerRequest: settings.maxRetriesPerRequest,
      connectionName: settings.connectionName,
      username: cluster.username,
      password: cluster.password,
      ...(cluster.tls ? { tls: {} } : {}),
    },
  };
}

/** A Redis URL (or cluster address) fit for logs and messages: the password, if any, masked. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/**
 * Resolves once the connection is ready. Producer-purpose connections refuse commands while
 * connecting (no offline queue), so callers wait here first; an unreachable Redis becomes one
 * clear error instead of a retry loop.
 */
export async function waitForRedisReady(redis: RedisConnection, url: string, timeoutMs = 10_000, options: { failFast?: boolean } = {}): Promise<void> {
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
            `cannot reach Redis at ${redactRedisUrl(url)} within ${timeoutMs / 1000} s: check ${settingOf(url)} and that redis-server is running`,
          ),
        ),
      timeoutMs,
    );
    redis.once('ready', onReady);
    redis.on('error', onError);
  });
}

/** The setting a user fixes when `address` fails: REDIS_URL, or REDIS_CLUSTER_NODES for a cluster. */
function settingOf(address: string): string {
  return isClusterAddress(address) ? 'REDIS_CLUSTER_NODES' : 'REDIS_URL';
}

/** A connection error no retry can fix (authentication, TLS trust), as a one-line streamseg error; null otherwise. */
export function fatalConnectionError(error: Error, url: string): StreamsegError | null {
  const where = redactRedisUrl(url);
  const message = error.message.split('\n')[0] ?? '';
  if (/WRONGPASS|NOAUTH|invalid password|AUTH.*without any password/i.test(message)) {
    return new StreamsegError(
      ErrorCode.REDIS_AUTH,
      `Redis at ${where} refused the credentials (${message}): set the password in ${settingOf(url)} (redis://:PASSWORD@host:port or redis://USER:PASSWORD@host:port)`,
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
  return new StreamsegError(
    ErrorCode.REDIS,
    `cannot reach Redis at ${redactRedisUrl(url)} (${why}): check ${settingOf(url)} and that redis-server is running there`,
  );
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
