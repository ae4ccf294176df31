import type { RedisConnection } from '../../shared/redis.js';
import { videoKeys } from '../../shared/redis-keys.js';

export type GuardVerdict = 'kept' | 'base';

/**
 * The confidence guard's decision per scene, shared by every worker: the first worker to judge
 * a scene stores its verdict (SET NX), and every later batch of the scene, on any worker, reads
 * it, so a scene never flips between the base model and the adapters midway.
 */
export class SceneGuardStore {
  private readonly local = new Map<string, GuardVerdict>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
  ) {}

  async get(videoId: string, scene: number): Promise<GuardVerdict | undefined> {
    const key = videoKeys(videoId).guard(scene);
    const known = this.local.get(key);
    if (known) return known;
    const stored = await this.redis.get(key);
    if (stored !== 'kept' && stored !== 'base') return undefined;
    this.remember(key, stored);
    return stored;
  }

  /** Stores `verdict` unless another worker got there first; returns the verdict that holds. */
  async settle(videoId: string, scene: number, verdict: GuardVerdict): Promise<GuardVerdict> {
    const key = videoKeys(videoId).guard(scene);
    const set = await this.redis.set(key, verdict, 'EX', this.ttlSeconds, 'NX');
    const holds = set === 'OK' ? verdict : (((await this.redis.get(key)) as GuardVerdict | null) ?? verdict);
    this.remember(key, holds);
    return holds;
  }

  private remember(key: string, verdict: GuardVerdict): void {
    this.local.set(key, verdict);
    // Scenes of finished videos are never asked again; a bounded map is enough.
    if (this.local.size > 4096) this.local.delete(this.local.keys().next().value!);
  }
}
