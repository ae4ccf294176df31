import ort from 'onnxruntime-node';
import type { LoraTarget } from '../../shared/model-manifest.js';
import { adapterCacheBytes, adapterCacheEvictions, adapterCacheHits, adapterCacheMisses, adapterMergeSeconds } from './adapter-metrics.js';
import { baseModelFeeds, rankOneZeros } from '../segmentation/lora-feed.js';
import { mergeAdapters, type MergeMethod, type MergedTarget, type WeightedAdapter } from './merge.js';

export type LoraFeeds = Record<string, ort.Tensor>;

/**
 * Ready-to-feed LoRA inputs for every target of the model. A target with rank 0 gets rank-1
 * zeros: ORT's MatMul over an empty inner dimension does not zero its output (training/model.py).
 */
export function feedsFromMerge(merged: ReadonlyMap<string, MergedTarget>, targets: readonly LoraTarget[]): { feeds: LoraFeeds; byteLength: number } {
  const feeds: LoraFeeds = {};
  let byteLength = 0;
  for (const target of targets) {
    const m = merged.get(target.module);
    if (!m || m.r === 0) {
      Object.assign(feeds, rankOneZeros(target));
      byteLength += 4 * (target.in + target.out);
    } else {
      feeds[target.inputA] = new ort.Tensor('float32', m.A, [m.r, target.in]);
      feeds[target.inputB] = new ort.Tensor('float32', m.B, [target.out, m.r]);
      byteLength += m.A.byteLength + m.B.byteLength;
    }
  }
  return { feeds, byteLength };
}

/** Base-model feeds: rank-1 zeros for every target (built in one place: segmentation/lora-feed.ts). */
export const zeroFeeds: (targets: readonly LoraTarget[]) => LoraFeeds = baseModelFeeds;

export interface MergeRequest {
  adapters: readonly WeightedAdapter[];
  method: MergeMethod;
  svdRank?: number;
}

export interface MergedAdapterCacheOptions {
  /**
   * Byte budget of the tensors held; least recently used merges are evicted beyond it. A
   * merge bigger than the budget is returned but not kept.
   * @defaultValue 67108864 (64 MiB)
   */
  maxBytes?: number;
}

export interface CacheLookup {
  key: string;
  feeds: LoraFeeds;
  /** True when the merge came from the cache. */
  hit: boolean;
  /** Time spent merging (0 on a hit). */
  mergeMs: number;
}

interface Entry {
  feeds: LoraFeeds;
  byteLength: number;
}

/**
 * LRU of merged adapters as ready-to-feed ORT tensors, keyed by the adapters' content
 * versions, their (quantised) weights and the merge method, so every scene that retrieves
 * the same mix reuses one merge. Tensors are shared between concurrent runs (ORT only reads
 * its inputs).
 */
export class MergedAdapterCache {
  readonly maxBytes: number;
  private readonly entries = new Map<string, Entry>();
  private heldBytes = 0;

  constructor(
    private readonly targets: readonly LoraTarget[],
    options: MergedAdapterCacheOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    if (!Number.isFinite(this.maxBytes) || this.maxBytes < 0) throw new RangeError(`maxBytes must be >= 0, got ${this.maxBytes}`);
  }

  /** The cache key: method (+ svd rank), then `name@version*weight` sorted by name; weights to 1e-4. */
  static keyOf(request: MergeRequest): string {
    const parts = request.adapters
      .filter((a) => a.weight !== 0)
      .map((a) => `${a.adapter.name}@${a.adapter.version}*${a.weight.toFixed(4)}`)
      .sort();
    const method = request.method === 'svd' ? `svd${request.svdRank ?? ''}` : request.method;
    return `${method}|${parts.join('|')}`;
  }

  /** Feeds of a merge: from the cache when present, merged (and cached) otherwise. */
  lookup(request: MergeRequest): CacheLookup {
    const key = MergedAdapterCache.keyOf(request);
    const cached = this.entries.get(key);
    if (cached) {
      // refresh recency: Map iteration order is insertion order
      this.entries.delete(key);
      this.entries.set(key, cached);
      adapterCacheHits.inc();
      return { key, feeds: cached.feeds, hit: true, mergeMs: 0 };
    }
    adapterCacheMisses.inc();
    const started = performance.now();
    const merged = mergeAdapters(request.adapters, this.targets, { method: request.method, svdRank: request.svdRank });
    const { feeds, byteLength } = feedsFromMerge(merged, this.targets);
    const mergeMs = performance.now() - started;
    adapterMergeSeconds.observe({ method: request.method }, mergeMs / 1000);
    if (byteLength <= this.maxBytes) {
      this.entries.set(key, { feeds, byteLength });
      this.heldBytes += byteLength;
      adapterCacheBytes.inc(byteLength);
      this.evict();
    }
    return { key, feeds, hit: false, mergeMs };
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  private evict(): void {
    while (this.heldBytes > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.drop(oldest.value);
      adapterCacheEvictions.inc();
    }
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.heldBytes -= entry.byteLength;
    adapterCacheBytes.dec(entry.byteLength);
  }
}
