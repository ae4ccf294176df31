import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { findFreePort } from '../../src/shared/free-port.js';
import { formatClusterAddress } from '../../src/shared/redis.js';

const run = promisify(execFile);
const LOOPBACK = '127.0.0.1';

export interface ClusterNodeInfo {
  port: number;
  /** The cluster bus port (`cluster-port`): picked free too, since port + 10000 may not be. */
  busPort: number;
  pid: number;
}

export interface TestRedisClusterOptions {
  /** @defaultValue 3 */
  masters?: number;
  /** @defaultValue 1 */
  replicasPerMaster?: number;
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before its replica is promoted.
   * Short, so a failover test takes seconds. @defaultValue 1000
   */
  nodeTimeoutMs?: number;
}

/**
 * A Redis Cluster on loopback for tests: `redis-server --cluster-enabled yes` processes (no RDB, no
 * AOF, a random password, `masterauth` for the replicas), joined by `redis-cli --cluster create`.
 * Every process is killed by stop() and, should the test process end without it, by an exit hook:
 * nothing is left behind.
 */
export class TestRedisCluster {
  readonly password = randomBytes(12).toString('hex');
  private readonly children = new Map<number, ChildProcess>();
  readonly nodes: ClusterNodeInfo[] = [];
  private stopping?: Promise<void>;
  private readonly onExit = () => {
    for (const child of this.children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };

  private constructor(
    readonly dir: string,
    private readonly options: Required<TestRedisClusterOptions>,
  ) {
    process.once('exit', this.onExit);
  }

  static async start(options: TestRedisClusterOptions = {}): Promise<TestRedisCluster> {
    const settings = { masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000, ...options };
    const cluster = new TestRedisCluster(await mkdtemp(path.join(os.tmpdir(), 'ss-cluster-')), settings);
    try {
      const count = settings.masters * (1 + settings.replicasPerMaster);
      const ports = new Set<number>();
      while (ports.size < count * 2) ports.add(await findFreePort());
      const list = [...ports];
      for (let i = 0; i < count; i++) await cluster.startNode(list[2 * i]!, list[2 * i + 1]!);
      await Promise.all(cluster.nodes.map((node) => cluster.waitForPing(node.port)));
      await run('redis-cli', [
        '--no-auth-warning',
        '-a',
        cluster.password,
        '--cluster',
        'create',
        ...cluster.nodes.map((n) => `${LOOPBACK}:${n.port}`),
        '--cluster-replicas',
        String(settings.replicasPerMaster),
        '--cluster-yes',
      ]);
      await cluster.waitForHealthy();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** `redis+cluster://:<password>@127.0.0.1:<port>,...`: what config.ts makes of REDIS_CLUSTER_NODES. */
  get address(): string {
    return formatClusterAddress({ tls: false, password: this.password, nodes: this.seedNodes.map((port) => ({ host: LOOPBACK, port })) });
  }

  /** REDIS_CLUSTER_NODES for the roles: the first node as a URL (it carries the password), then host:port. */
  get clusterNodesEnv(): string {
    const [first, ...rest] = this.seedNodes;
    return [`redis://:${this.password}@${LOOPBACK}:${first}`, ...rest.map((port) => `${LOOPBACK}:${port}`)].join(',');
  }

  /** Ports of the nodes still running. */
  private get seedNodes(): number[] {
    return this.nodes.filter((n) => this.isRunning(n.port)).map((n) => n.port);
  }

  isRunning(port: number): boolean {
    const child = this.children.get(port);
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  /** A plain client on one node (no redirections followed). */
  node(port: number): Redis {
    const client = new Redis({ host: LOOPBACK, port, password: this.password, maxRetriesPerRequest: 1, lazyConnect: false });
    client.on('error', () => undefined);
    return client;
  }

  /** Runs one command on one node and closes the connection. */
  async command(port: number, ...args: (string | number)[]): Promise<unknown> {
    const client = this.node(port);
    try {
      return await client.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      client.disconnect();
    }
  }

  /** The cluster's view from a running node: port → { id, master?, slots }. */
  async topology(): Promise<{ id: string; port: number; master: boolean; failed: boolean; slots: [number, number][] }[]> {
    const seed = this.seedNodes[0];
    if (seed === undefined) throw new Error('no cluster node is running');
    const text = String(await this.command(seed, 'CLUSTER', 'NODES'));
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id, addr, flags, , , , , , ...slots] = line.split(' ');
        return {
          id: id!,
          port: Number(/:(\d+)@/.exec(addr!)?.[1]),
          master: flags!.split(',').includes('master'),
          failed: /fail/.test(flags!),
          slots: slots
            .filter((s) => !s.startsWith('['))
            .map((s) => {
              const [from, to] = s.split('-').map(Number);
              return [from!, to ?? from!] as [number, number];
            }),
        };
      });
  }

  /** Hash slot of a key (CLUSTER KEYSLOT). */
  async keySlot(key: string): Promise<number> {
    return Number(await this.command(this.seedNodes[0]!, 'CLUSTER', 'KEYSLOT', key));
  }

  /** The port of the master serving `slot` now. */
  async masterOfSlot(slot: number): Promise<number> {
    const owner = (await this.topology()).find((n) => n.master && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!owner) throw new Error(`no master serves slot ${slot}`);
    return owner.port;
  }

  /** kill -9 of one node. */
  async kill(port: number): Promise<void> {
    const child = this.children.get(port);
    if (!child || !this.isRunning(port)) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Waits until every running node says cluster_state:ok and agrees that every slot has a live master. */
  async waitForHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(
        this.seedNodes.map(async (port) => {
          const info = String(await this.command(port, 'CLUSTER', 'INFO').catch(() => ''));
          return /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info);
        }),
      );
      if (states.length > 0 && states.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error(`the cluster did not become healthy within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Moves `slot` (and its keys) to the master on `toPort` with `redis-cli --cluster reshard`,
   * which takes the lowest slots of the source first: `slots` = how many of the source's slots
   * move (from its first slot up to and including `slot`). Returns redis-cli's output.
   */
  async reshard(fromPort: number, toPort: number, slots: number): Promise<string> {
    const topology = await this.topology();
    const from = topology.find((n) => n.port === fromPort)!;
    const to = topology.find((n) => n.port === toPort)!;
    const { stdout } = await run(
      'redis-cli',
      [
        '--no-auth-warning',
        '-a',
        this.password,
        '--cluster',
        'reshard',
        `${LOOPBACK}:${fromPort}`,
        '--cluster-from',
        from.id,
        '--cluster-to',
        to.id,
        '--cluster-slots',
        String(slots),
        '--cluster-yes',
        '--cluster-pipeline',
        '100',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  }

  /** Kills every node (SIGKILL: nothing to save) and removes the directory; safe to call twice. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      await Promise.all([...this.children.keys()].map((port) => this.kill(port)));
      process.off('exit', this.onExit);
      await rm(this.dir, { recursive: true, force: true });
    })());
  }

  private async startNode(port: number, busPort: number): Promise<void> {
    const dir = path.join(this.dir, String(port));
    await mkdir(dir);
    // prettier-ignore
    const args = [
      '--port', String(port), '--cluster-port', String(busPort), '--bind', LOOPBACK,
      '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'),
      '--cluster-node-timeout', String(this.options.nodeTimeoutMs),
      '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction',
      '--requirepass', this.password, '--masterauth', this.password,
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'ignore'] });
    this.children.set(port, child);
    this.nodes.push({ port, busPort, pid: child.pid! });
  }

  private async waitForPing(port: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!this.isRunning(port)) throw new Error(`redis-server on port ${port} exited`);
      const ok = await this.command(port, 'PING').catch(() => null);
      if (ok === 'PONG') return;
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export function startRedisCluster(options?: TestRedisClusterOptions): Promise<TestRedisCluster> {
  return TestRedisCluster.start(options);
}
