import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { ErrorCode, StreamsegError } from '../shared/errors/index.js';
import { findFreePort } from '../shared/free-port.js';

/** The only address the embedded server listens on. */
const LOOPBACK = '127.0.0.1';

export interface EmbeddedRedis {
  /** `redis://:<password>@127.0.0.1:<port>` */
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedRedisOptions {
  /** The redis-server binary. @defaultValue `redis-server` from PATH */
  binary?: string;
  /** Append-only file on, as in production; off makes throwaway test servers cheaper. @defaultValue false */
  appendOnly?: boolean;
}

/**
 * Starts a private `redis-server` on a free loopback port, in a temporary directory that is
 * removed on stop. `streamseg run` uses it when no REDIS_URL is given; tests use it too. It is
 * bound to 127.0.0.1 only (checked once it answers) and needs a random password, carried in the
 * URL it returns (`redis://:<password>@127.0.0.1:<port>`): another local user cannot use it.
 * The settings go through a config file readable by this user only, so the password never shows
 * in the process list.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-redis-'));
  const port = await findFreePort();
  const password = randomBytes(24).toString('hex');
  const configFile = path.join(dir, 'redis.conf');
  const settings = [
    `port ${port}`,
    `bind ${LOOPBACK}`,
    'protected-mode yes',
    `requirepass ${password}`,
    `dir ${JSON.stringify(dir)}`,
    'save ""',
    `appendonly ${options.appendOnly ? 'yes' : 'no'}`,
    'maxmemory-policy noeviction',
  ];
  await writeFile(configFile, `${settings.join('\n')}\n`, { mode: 0o600 });
  // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and the server
  // must outlive the roles that use it while they drain; stop() ends it last.
  const child: ChildProcess = spawn(options.binary ?? 'redis-server', [configFile], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  const url = `redis://:${password}@${LOOPBACK}:${port}`;

  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawnError) {
      await rm(dir, { recursive: true, force: true });
      throw new StreamsegError(
        ErrorCode.REDIS_START,
        `cannot start redis-server (${spawnError.message}): install it (apt-get install redis-server) or set REDIS_URL`,
      );
    }
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        await rm(dir, { recursive: true, force: true });
        throw new StreamsegError(ErrorCode.REDIS_START, `redis-server did not answer on port ${port}; set REDIS_URL to use another server`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  // Bound where it was told, and nowhere else (a config include or an old binary could differ).
  const bound = ((await probe.call('CONFIG', 'GET', 'bind').catch(() => [])) as string[])[1]?.trim();
  probe.disconnect();
  if (bound !== LOOPBACK) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new StreamsegError(
      ErrorCode.REDIS_START,
      `redis-server is bound to "${bound ?? 'unknown'}", not ${LOOPBACK} only; set REDIS_URL to use another server`,
    );
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
          if (child.exitCode === null) child.kill('SIGKILL');
        }
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

/**
 * The line `run` and `serve` print to stderr when they start their own server, so a user can
 * point `status`, `watch` or `submit` in another terminal at it while it runs.
 */
export function embeddedRedisNotice(url: string): string {
  return `streamseg: own redis-server at ${url} while this runs; in another terminal: REDIS_URL=${url} npx streamseg status\n`;
}
