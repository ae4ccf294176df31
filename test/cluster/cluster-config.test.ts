import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { ConfigError } from '../../src/shared/errors/index.js';
import { isClusterAddress, parseClusterAddress, redactRedisUrl } from '../../src/shared/redis.js';

/** REDIS_CLUSTER_NODES → the `redis+cluster://` address every role opens as a Cluster. */
describe('REDIS_CLUSTER_NODES', () => {
  const problems = (env: NodeJS.ProcessEnv): string[] => {
    try {
      loadConfig({}, env);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  };

  it('becomes a cluster address carrying the scheme and credentials of its URL entry', () => {
    const config = loadConfig({}, { REDIS_CLUSTER_NODES: 'rediss://app:p%40ss@10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002' });
    expect(isClusterAddress(config.redisUrl!)).toBe(true);
    expect(parseClusterAddress(config.redisUrl!)).toEqual({
      tls: true,
      username: 'app',
      password: 'p@ss',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
    expect(redactRedisUrl(config.redisUrl!)).not.toContain('p%40ss');
    expect(parseClusterAddress(loadConfig({}, { REDIS_CLUSTER_NODES: 'a:1,b:2' }).redisUrl!)).toEqual({
      tls: false,
      username: undefined,
      password: undefined,
      nodes: [
        { host: 'a', port: 1 },
        { host: 'b', port: 2 },
      ],
    });
  });

  it('refuses bad entries one message each, never printing a password, and REDIS_URL beside it', () => {
    const bad = problems({ REDIS_CLUSTER_NODES: 'redis://:secret@a:1,host-without-port,b:99999,redis://:other@c:3,redis://d:4/2' });
    expect(bad).toHaveLength(4);
    expect(bad.join('\n')).not.toMatch(/secret|other/);
    expect(bad[0]).toMatch(/^REDIS_CLUSTER_NODES=.*"host-without-port" is neither host:port/);
    expect(bad.some((p) => /same scheme and credentials/.test(p))).toBe(true);
    expect(bad.some((p) => /database 0 only/.test(p))).toBe(true);
    expect(problems({ REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://x:6379' })).toEqual([
      'REDIS_CLUSTER_NODES="a:1": set either REDIS_URL (one server) or REDIS_CLUSTER_NODES (a cluster), not both',
    ]);
    // Unset or empty: one server as before.
    expect(loadConfig({}, { REDIS_URL: 'redis://x:6379', REDIS_CLUSTER_NODES: '' }).redisUrl).toBe('redis://x:6379');
  });
});
