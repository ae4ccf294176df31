import type { Queue } from 'bullmq';
import { isCluster, scanKeys, type RedisConnection } from '../../shared/redis.js';
import { AggregatorRegistry, Gauge, Registry, type MetricObjectWithValues, type MetricValue, type PrometheusContentType } from 'prom-client';
import { metricsRegistry } from '../../shared/metrics.js';
import { METRICS_SNAPSHOT_PREFIX } from '../../shared/redis-keys.js';

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;

/**
 * /metrics for the whole cluster: every process's series (each publishes a snapshot to Redis,
 * see MetricsPublisher; this process's own are read live), summed by prom-client's aggregator,
 * plus what only the API can see: queue depths and workers per queue, the adapter-cache hit
 * ratio and frames per second per stage since the previous scrape.
 */
export class ClusterMetricsService {
  private readonly registry = new Registry();
  private readonly queueJobs: Gauge<'queue' | 'state'>;
  private readonly queueWorkers: Gauge<'queue'>;
  private readonly hitRatio: Gauge;
  private readonly framesPerSecond: Gauge<'stage'>;
  private previous?: { at: number; frames: Map<string, number> };

  constructor(
    private readonly redis: RedisConnection,
    private readonly queues: readonly Queue[],
    private readonly ownInstanceId: string,
  ) {
    const registers = [this.registry];
    this.queueJobs = new Gauge({ name: 'streamseg_queue_jobs', help: 'Jobs per queue and state (BullMQ)', labelNames: ['queue', 'state'], registers });
    this.queueWorkers = new Gauge({ name: 'streamseg_queue_workers', help: 'Workers connected per queue', labelNames: ['queue'], registers });
    this.hitRatio = new Gauge({
      name: 'streamseg_adapter_cache_hit_ratio',
      help: 'Merged-adapter cache hits / lookups, all workers, since they started',
      registers,
    });
    this.framesPerSecond = new Gauge({
      name: 'streamseg_frames_per_second',
      help: 'Frames per second per stage over the interval since the previous scrape (all processes)',
      labelNames: ['stage'],
      registers,
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async render(): Promise<string> {
    const snapshots = await this.snapshots();
    const aggregated = AggregatorRegistry.aggregate<PrometheusContentType>([await metricsRegistry.getMetricsAsJSON(), ...snapshots]);
    await this.collectQueues();
    const hits = await sumOf(aggregated, 'streamseg_adapter_cache_hits_total');
    const misses = await sumOf(aggregated, 'streamseg_adapter_cache_misses_total');
    this.hitRatio.set(hits + misses > 0 ? hits / (hits + misses) : 0);
    await this.collectRates(aggregated);
    return `${await aggregated.metrics()}\n${await this.registry.metrics()}`;
  }

  /** Other processes' snapshots (this one's is read live). */
  private async snapshots(): Promise<MetricObjectWithValues<MetricValue<string>>[][]> {
    const own = `${METRICS_SNAPSHOT_PREFIX}${this.ownInstanceId}`;
    const keys = (await scanKeys(this.redis, `${METRICS_SNAPSHOT_PREFIX}*`, 1000)).filter((k) => k !== own);
    if (keys.length === 0) return [];
    // One key per process, spread over a cluster's slots: there, one GET each (MGET is single-slot).
    const values = isCluster(this.redis) ? await Promise.all(keys.map((key) => this.redis.get(key))) : await this.redis.mget(...keys);
    return values.flatMap((v) => {
      if (!v) return [];
      try {
        return [JSON.parse(v) as MetricObjectWithValues<MetricValue<string>>[]];
      } catch {
        return [];
      }
    });
  }

  private async collectQueues(): Promise<void> {
    this.queueJobs.reset();
    await Promise.all(
      this.queues.map(async (queue) => {
        const counts = await queue.getJobCounts(...QUEUE_STATES);
        for (const state of QUEUE_STATES) this.queueJobs.set({ queue: queue.name, state }, counts[state] ?? 0);
        this.queueWorkers.set({ queue: queue.name }, (await queue.getWorkers()).length);
      }),
    );
  }

  private async collectRates(aggregated: Registry): Promise<void> {
    const metric = aggregated.getSingleMetric('streamseg_frames_total');
    const now = Date.now();
    const frames = new Map<string, number>();
    for (const value of metric ? (await metric.get()).values : []) {
      const stage = String(value.labels.stage ?? '');
      frames.set(stage, (frames.get(stage) ?? 0) + value.value);
    }
    const previous = this.previous;
    if (previous && now > previous.at) {
      for (const [stage, total] of frames) {
        const delta = total - (previous.frames.get(stage) ?? 0);
        this.framesPerSecond.set({ stage }, Math.max(0, delta) / ((now - previous.at) / 1000));
      }
    }
    this.previous = { at: now, frames };
  }
}

async function sumOf(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}
