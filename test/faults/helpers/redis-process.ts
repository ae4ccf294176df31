import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { findFreePort } from '../../../src/shared/free-port.js';

export interface RedisProcessOptions {
  /** AOF on with fsync every second, as in production (needed to survive a restart). */
  appendOnly?: boolean;
  /** `--requirepass`: clients must AUTH. */
  password?: string;
  /** TLS only (`--port 0 --tls-port`), with these PEM files. */
  tls?: { cert: string; key: string; ca: string };
}

/**
 * A redis-server the test can stop and start again on the same port and directory (so an AOF
 * restart keeps the data), unlike test/helpers/redis-server.ts, which removes its directory.
 */
export class RedisProcess {
  private child?: ChildProcess;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisProcessOptions,
  ) {}

  static async start(options: RedisProcessOptions = {}): Promise<RedisProcess> {
    const server = new RedisProcess(await findFreePort(), await mkdtemp(path.join(os.tmpdir(), 'ss-faults-redis-')), options);
    await server.startProcess();
    return server;
  }

  /** redis:// (or rediss://) URL, with the password when there is one. */
  get url(): string {
    const auth = this.options.password ? `:${encodeURIComponent(this.options.password)}@` : '';
    return `${this.options.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** A client for the test itself (knows the password and the CA). */
  client(extra: RedisOptions = {}): Redis {
    const tls = this.options.tls ? { tls: { ca: readFileSync(this.options.tls.ca) } } : {};
    return new Redis(this.url, { maxRetriesPerRequest: null, ...tls, ...extra });
  }

  private async startProcess(): Promise<void> {
    const { appendOnly, password, tls } = this.options;
    // prettier-ignore
    const args = [
      '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--appendonly', appendOnly ? 'yes' : 'no', '--appendfsync', 'everysec',
      '--maxmemory-policy', 'noeviction',
      ...(password ? ['--requirepass', password] : []),
      ...(tls
        ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no']
        : ['--port', String(this.port)]),
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    const probe = this.client({ lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      for (let tries = 0; ; tries++) {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        try {
          await probe.connect();
          await probe.ping();
          return;
        } catch (error) {
          probe.disconnect();
          if (tries > 200) throw error;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      probe.disconnect();
    }
  }

  /** SIGTERM (redis-server then writes its AOF and exits) and waits. */
  async stopProcess(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  /** Stops and starts again on the same port with the same directory (AOF replayed). */
  async restart(): Promise<void> {
    await this.stopProcess();
    await this.startProcess();
  }

  async stop(): Promise<void> {
    await this.stopProcess();
    await rm(this.dir, { recursive: true, force: true });
  }
}
