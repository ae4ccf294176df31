import { type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { spawnCli, REPO_ROOT } from '../../helpers/cli.js';

/** The 64×64 fixture model: fast enough that a fault test runs in seconds. */
export const TEST_MODEL = path.join(REPO_ROOT, 'test/fixtures/test-model');

/**
 * Settings every fault test runs its processes with: a dead process's jobs are recovered within
 * about three seconds (lock 2 s, stalled check every 0.5 s), one ORT thread per process.
 */
export function faultEnv(redisUrl: string, outRoot: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    REDIS_URL: redisUrl,
    STREAMSEG_MODEL: TEST_MODEL,
    STREAMSEG_OUT: outRoot,
    STREAMSEG_LOCK_DURATION_MS: '2000',
    STREAMSEG_STALLED_INTERVAL_MS: '500',
    STREAMSEG_INTRA_OP_THREADS: '1',
    STREAMSEG_SHUTDOWN_GRACE_MS: '8000',
    STREAMSEG_METRICS_PUBLISH_MS: '0',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** One `streamseg <role>` process, with its log kept for assertions and diagnosis. */
export class RoleProcess {
  readonly child: ChildProcess;
  log = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly role: 'producer' | 'worker' | 'sink',
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawnCli([role], env);
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-200_000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves once the role logged that it started (its BullMQ worker is ready). */
  async ready(timeoutMs = 60_000): Promise<this> {
    const deadline = Date.now() + timeoutMs;
    while (!/"msg":"(producer|sink|segmentation worker) started"/.test(this.log)) {
      if (this.child.exitCode !== null) throw new Error(`${this.role} exited with ${this.child.exitCode}:\n${this.log.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`${this.role} not started after ${timeoutMs} ms:\n${this.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Peak resident set size of the process so far (VmHWM), bytes; 0 once it has exited. */
  async peakRssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8').catch(() => '');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  }

  /** SIGKILL if still running (test clean-up). */
  async stop(): Promise<void> {
    this.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts roles and waits until each is ready. */
export async function startRoles(roles: RoleProcess['role'][], env: NodeJS.ProcessEnv): Promise<RoleProcess[]> {
  const started = roles.map((role) => new RoleProcess(role, env));
  try {
    await Promise.all(started.map((r) => r.ready()));
  } catch (error) {
    await Promise.all(started.map((r) => r.stop()));
    throw error;
  }
  return started;
}
