import { Counter, Gauge, Histogram } from 'prom-client';
import { metricsRegistry } from '../../shared/metrics.js';

/** Prometheus series of adapter retrieval, merging and caching, on the process-wide registry. */

export const adapterCacheHits = new Counter({
  name: 'streamseg_adapter_cache_hits_total',
  help: 'Merged-adapter cache lookups answered from the cache',
  registers: [metricsRegistry],
});

export const adapterCacheMisses = new Counter({
  name: 'streamseg_adapter_cache_misses_total',
  help: 'Merged-adapter cache lookups that had to merge',
  registers: [metricsRegistry],
});

export const adapterCacheEvictions = new Counter({
  name: 'streamseg_adapter_cache_evictions_total',
  help: 'Merged adapters evicted to stay within the byte budget',
  registers: [metricsRegistry],
});

export const adapterCacheBytes = new Gauge({
  name: 'streamseg_adapter_cache_bytes',
  help: 'Bytes of ready-to-feed tensors held by merged-adapter caches',
  registers: [metricsRegistry],
});

export const adapterMergeSeconds = new Histogram({
  name: 'streamseg_adapter_merge_seconds',
  help: 'Time to merge adapters into ready-to-feed tensors, by method',
  labelNames: ['method'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [metricsRegistry],
});

export const embedderRuns = new Counter({
  name: 'streamseg_embedder_runs_total',
  help: 'Embedder (ONNX) runs; one per scene when scene embeddings are shared',
  registers: [metricsRegistry],
});

export const sceneEmbeddings = new Counter({
  name: 'streamseg_scene_embeddings_total',
  help: 'Scene embeddings obtained, by source: computed here, read from Redis, or from this process',
  labelNames: ['source'] as const,
  registers: [metricsRegistry],
});

export const adapterSelections = new Counter({
  name: 'streamseg_adapter_selections_total',
  help: 'Scenes fed with an adapter mix, by outcome: merged, base (nothing retrieved) or nearest (threshold fallback)',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});
