import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoles } from '../../src/cli/roles.js';
import { loadConfig } from '../../src/shared/config.js';
import { TEST_MODEL } from '../api/stack.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';

describe('roles started in one process (streamseg run)', () => {
  let server: TestRedisServer;
  let dir: string;
  const lines: string[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-role-logs-'));
    const config = loadConfig({ outDir: path.join(dir, 'out'), modelDir: TEST_MODEL, intraOpThreads: 1, logLevel: 'info' }, {});
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const roles = await startRoles(['producer', 'worker', 'sink'], { config, redisUrl: server.url, logger });
    await roles.close();
  });

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('log each line with its role once (a key written twice is a malformed JSON object for log tools)', () => {
    const roles = new Set<string>();
    for (const line of lines) {
      expect(line.match(/"role":/g)?.length ?? 0, line).toBeLessThanOrEqual(1);
      const { role } = JSON.parse(line) as { role?: string };
      if (role) roles.add(role);
    }
    expect([...roles].sort()).toEqual(['producer', 'sink', 'worker']);
    const loaded = lines.find((line) => line.includes('segmentation model loaded'));
    expect(loaded && (JSON.parse(loaded) as { role?: string }).role).toBe('worker');
  });
});
