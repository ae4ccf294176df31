import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/cli/embedded-redis.js';
import { runCli, spawnCli, stopProcess } from '../helpers/cli.js';
import { TEST_MODEL, TOKEN } from '../api/stack.js';

/** Issue 18, finding 6: the redis-server `run` and `serve` start themselves listens on loopback only and needs a random password. */
describe('the embedded redis-server (issue 18)', () => {
  let server: EmbeddedRedis;

  beforeAll(async () => {
    server = await startEmbeddedRedis();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('needs the random password its URL carries, and is bound to 127.0.0.1 only', async () => {
    const url = new URL(server.url);
    expect(url.hostname).toBe('127.0.0.1');
    expect(url.password).toMatch(/^[0-9a-f]{48}$/);
    // A client without the password (raw RESP, so no client library retries or checks get in between).
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(url.port), '127.0.0.1', () => socket.write('PING\r\nAUTH guess\r\n'));
      let text = '';
      socket.on('data', (d) => {
        text += d.toString();
        if (text.split('\r\n').length > 2) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^-NOAUTH.*\r\n-WRONGPASS/);
    expect(reply).not.toContain(url.password);

    const owner = new Redis(server.url);
    expect(await owner.ping()).toBe('PONG');
    expect(await owner.call('CONFIG', 'GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    owner.disconnect();

    // Not reachable on this machine's other addresses.
    const others = Object.values(os.networkInterfaces())
      .flat()
      .filter((i) => i && i.family === 'IPv4' && !i.internal)
      .map((i) => i!.address);
    for (const address of others) {
      const reached = await new Promise<boolean>((resolve) => {
        const socket = net.connect(Number(url.port), address, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      expect(reached, address).toBe(false);
    }
  });

  it('the password never shows in the process list', async () => {
    const password = new URL(server.url).password;
    const seen: string[] = [];
    for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(password)) seen.push(pid);
    }
    expect(seen).toEqual([]);
  });

  it('serve --roles all prints a URL with the password: `REDIS_URL=<printed> streamseg status` works, without the password it does not', async () => {
    const serve = spawnCli(['serve', '--roles', 'all', '--port', '0', '--host', '127.0.0.1'], {
      REDIS_URL: undefined,
      STREAMSEG_API_TOKENS: TOKEN,
      STREAMSEG_MODEL: TEST_MODEL,
      LOG_LEVEL: 'warn',
    });
    let stderr = '';
    serve.stdout!.resume();
    try {
      await new Promise<void>((resolve, reject) => {
        serve.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('streamseg API on')) resolve();
        });
        serve.once('exit', () => reject(new Error(stderr)));
      });
      const printed =
        /^streamseg: own redis-server at (redis:\/\/:[0-9a-f]{48}@127\.0\.0\.1:(\d+)) while this runs; in another terminal: REDIS_URL=\1 npx streamseg status$/m.exec(
          stderr,
        );
      expect(printed, stderr).not.toBeNull();
      expect((await runCli(['status'], { REDIS_URL: printed![1] })).code).toBe(0);
      const without = await runCli(['status'], { REDIS_URL: `redis://127.0.0.1:${printed![2]}` });
      expect(without.code).not.toBe(0);
      expect(without.stderr).toMatch(/NOAUTH|auth/i);
    } finally {
      await stopProcess(serve);
    }
  }, 90_000);
});
