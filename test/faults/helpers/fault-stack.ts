import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { PipelineClient } from '../../../src/shared/pipeline-client.js';
import { makeTestVideo, smallClipSpec } from '../../helpers/media.js';
import { connectClient } from './pipeline.js';
import { RedisProcess, type RedisProcessOptions } from './redis-process.js';
import { type RoleProcess, faultEnv, startRoles } from './roles.js';

export interface FaultStackOptions {
  /** Names the temporary directory: `ss-faults-<prefix>-XXXXXX`. */
  prefix: string;
  /** The redis-server's options: `appendOnly` for a test that restarts it. */
  redis?: Pick<RedisProcessOptions, 'appendOnly'>;
  /** Makes `<dir>/clip.mp4`: two scenes of `frames / 2` frames each, 96×54 at 10 fps, H.264. */
  video?: { frames: number };
  /** Settings on top of faultEnv() for the role processes. */
  env?: NodeJS.ProcessEnv;
  /** Roles started (and waited for) before the client connects; by default producer, worker and sink. */
  roles?: RoleProcess['role'][];
}

/**
 * What a fault test runs against: its own redis-server, a data client on it, a temporary
 * directory (outputs under `<dir>/out`), the role processes and a submitting client.
 * stop() undoes all of it, and is what a failed start does before it rethrows.
 */
export class FaultStack {
  redis!: RedisProcess;
  /** A plain client for reading keys and streams (`redis.client()`). */
  data!: Redis;
  dir!: string;
  /** faultEnv(...) the roles run with; startRole() starts more with it. */
  env!: NodeJS.ProcessEnv;
  client!: PipelineClient;
  /** Every role started, the ones started later by startRole() included. */
  readonly roles: RoleProcess[] = [];
  private clip?: string;

  private constructor() {}

  static async start(options: FaultStackOptions): Promise<FaultStack> {
    const stack = new FaultStack();
    try {
      stack.redis = await RedisProcess.start(options.redis);
      stack.data = stack.redis.client();
      stack.dir = await mkdtemp(path.join(os.tmpdir(), `ss-faults-${options.prefix}-`));
      if (options.video) {
        const { frames } = options.video;
        stack.clip = path.join(stack.dir, 'clip.mp4');
        await makeTestVideo(stack.clip, smallClipSpec(frames));
      }
      stack.env = faultEnv(stack.redis.url, stack.outRoot, options.env);
      stack.roles.push(...(await startRoles(options.roles ?? ['producer', 'worker', 'sink'], stack.env)));
      stack.client = await connectClient(stack.redis.url);
      return stack;
    } catch (error) {
      await stack.stop();
      throw error;
    }
  }

  /** The clip made from `video`. */
  get input(): string {
    if (!this.clip) throw new Error('this fault stack was started without `video`: there is no clip');
    return this.clip;
  }

  /** STREAMSEG_OUT of the roles. */
  get outRoot(): string {
    return path.join(this.dir, 'out');
  }

  outDir(videoId: string): string {
    return path.join(this.outRoot, videoId);
  }

  /** Submits the clip as `videoId`, writing to outDir(videoId). */
  submit(videoId: string): Promise<string> {
    return this.client.submitter.submit(this.input, { videoId, outDir: this.outDir(videoId) });
  }

  /** Starts one more role with the same settings and waits until it is ready. */
  async startRole(role: RoleProcess['role']): Promise<RoleProcess> {
    const [started] = await startRoles([role], this.env);
    this.roles.push(started!);
    return started!;
  }

  /** The roles of that kind that have not exited. */
  running(role: RoleProcess['role']): RoleProcess[] {
    return this.roles.filter((r) => r.role === role && r.child.exitCode === null && r.child.signalCode === null);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.roles.map((r) => r.stop()));
    await this.client?.close();
    this.data?.disconnect();
    await this.redis?.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

export function startFaultStack(options: FaultStackOptions): Promise<FaultStack> {
  return FaultStack.start(options);
}
