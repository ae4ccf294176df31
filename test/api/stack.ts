import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createApiServer, type ApiServer } from '../../src/api/server.js';
import { startRoles, type RunningRoles } from '../../src/cli/roles.js';
import { loadConfig, type ConfigOverrides, type StreamsegConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';

export const TOKEN = 'test-token-0123456789abcdef';
export const TEST_MODEL = path.join(REPO_ROOT, 'test/fixtures/test-model');

/** A real redis-server, producer + worker + sink (test model), and the API on a free port, all in this process. */
export interface ApiStack {
  url: string;
  dir: string;
  config: StreamsegConfig;
  redisUrl: string;
  /** A plain connection for looking at keys. */
  redis: Redis;
  server: ApiServer;
  stop(): Promise<void>;
}

export async function startApiStack(overrides: ConfigOverrides = {}): Promise<ApiStack> {
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const redisServer: TestRedisServer = await startRedisServer();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ss-api-'));
  const config = loadConfig(
    {
      apiTokens: TOKEN,
      outDir: path.join(dir, 'out'),
      modelDir: TEST_MODEL,
      intraOpThreads: 1,
      sinkSegmentFrames: 8,
      highWaterFrames: 16,
      metricsPublishMs: 500,
      logLevel: 'silent',
      ...overrides,
    },
    {},
  );
  let roles: RunningRoles | undefined;
  let server: ApiServer | undefined;
  const redis = new Redis(redisServer.url);
  try {
    roles = await startRoles(['producer', 'worker', 'sink'], { config, redisUrl: redisServer.url, logger });
    server = await createApiServer({ config, redisUrl: redisServer.url, logger, cancel: { waitMs: 30_000 } });
    const url = await server.listen(0, '127.0.0.1');
    return {
      url,
      dir,
      config,
      redisUrl: redisServer.url,
      redis,
      server,
      stop: async () => {
        await server?.close();
        await roles?.close();
        redis.disconnect();
        await redisServer.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await server?.close();
    await roles?.close();
    redis.disconnect();
    await redisServer.stop();
    throw error;
  }
}

export function auth(extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${TOKEN}`, ...extra };
}

export interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** Reads Server-Sent Events from a response body until the stream ends. */
export async function readSse(response: Response, onEvent?: (event: SseEvent) => boolean | void): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = response.body!.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event: SseEvent = { event: 'message', data: '' };
        let hasData = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const at = line.indexOf(':');
          const field = at < 0 ? line : line.slice(0, at);
          const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
          if (field === 'event') event.event = value;
          else if (field === 'id') event.id = value;
          else if (field === 'data') {
            event.data += (hasData ? '\n' : '') + value;
            hasData = true;
          }
        }
        if (!hasData) continue;
        events.push(event);
        if (onEvent?.(event) === true) return events;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return events;
}

/** Polls until `check` returns a value (not undefined); gives up after `timeoutMs` (a hang guard, not an assertion on time). */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
