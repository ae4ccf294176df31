import os from 'node:os';
import type { RedisConnection } from './redis.js';
import type { Registry } from 'prom-client';
import { METRICS_SNAPSHOT_PREFIX } from './redis-keys.js';

/** This process's name among metrics snapshots: host and pid. */
export function metricsInstanceId(): string {
  return `${os.hostname()}-${process.pid}`;
}

export interface MetricsPublisherOptions {
  redis: RedisConnection;
  registry: Registry;
  /** How often the snapshot is refreshed. */
  intervalMs: number;
  /** @defaultValue metricsInstanceId() */
  instanceId?: string;
}

/**
 * Publishes this process's metrics (prom-client JSON) to Redis every `intervalMs`, with a TTL
 * of three intervals, so the API's /metrics can aggregate every producer, worker and sink of
 * the cluster without scraping each (a dead process's snapshot expires on its own).
 */
export class MetricsPublisher {
  readonly instanceId: string;
  private timer?: NodeJS.Timeout;
  private closing?: Promise<void>;

  constructor(private readonly options: MetricsPublisherOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError('intervalMs must be greater than 0');
    this.instanceId = options.instanceId ?? metricsInstanceId();
  }

  start(): this {
    this.timer ??= setInterval(() => void this.publish().catch(() => undefined), this.options.intervalMs);
    this.timer.unref();
    void this.publish().catch(() => undefined);
    return this;
  }

  async publish(): Promise<void> {
    const json = await this.options.registry.getMetricsAsJSON();
    await this.options.redis.set(`${METRICS_SNAPSHOT_PREFIX}${this.instanceId}`, JSON.stringify(json), 'PX', this.options.intervalMs * 3);
  }

  /** Stops publishing and publishes once more (final counts); idempotent, never throws. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      clearInterval(this.timer);
      await this.publish().catch(() => undefined);
    })());
  }
}
