import { describe, expect, it } from 'vitest';
import { metricsRegistry } from '../../src/shared/metrics.js';
import type { AdapterTarget, LoadedAdapter } from '../../src/shared/adapters/adapter-loader.js';
import { MergedAdapterCache, feedsFromMerge, zeroFeeds } from '../../src/workers/adapters/merged-adapter-cache.js';
import { denseDelta, relativeError } from '../../src/workers/adapters/merge.js';
import { TEST_TARGETS, randomMatrix, rng } from '../fixtures/adapters/adapter-fixtures.js';

function makeAdapter(name: string, seed: number, r = 4, version = `v${seed}`): LoadedAdapter {
  const random = rng(seed);
  const targets = new Map<string, AdapterTarget>();
  for (const t of TEST_TARGETS) {
    targets.set(t.module, { module: t.module, in: t.in, out: t.out, r, A: randomMatrix(r, t.in, random), B: randomMatrix(t.out, r, random), scaling: 2 });
  }
  return { name, version, r, alpha: 2 * r, targets, byteLength: 0, source: name };
}

async function metric(name: string): Promise<number> {
  const m = await metricsRegistry.getSingleMetric(name)?.get();
  return (m?.values ?? []).filter((v) => !('metricName' in v) || !String(v.metricName).endsWith('_bucket')).reduce((s, v) => s + v.value, 0);
}

const fog = makeAdapter('fog', 1);
const night = makeAdapter('night', 2);
const rain = makeAdapter('rain', 3);
// bytes of one cat merge of two rank-4 adapters over TEST_TARGETS
const catBytes = TEST_TARGETS.reduce((s, t) => s + 4 * 8 * (t.in + t.out), 0);

describe('merged-adapter cache', () => {
  it('feeds every target by input name, dims [r,in] and [out,r]; rank 0 becomes rank-1 zeros', () => {
    const zero = zeroFeeds(TEST_TARGETS);
    expect(Object.keys(zero).sort()).toEqual(TEST_TARGETS.flatMap((t) => [t.inputA, t.inputB]).sort());
    expect(zero['head.proj.lora_A']!.dims).toEqual([1, 20]);
    expect(zero['head.proj.lora_B']!.dims).toEqual([8, 1]);
    expect(Array.from(zero['head.proj.lora_B']!.data as Float32Array).every((x) => x === 0)).toBe(true);
    const cache = new MergedAdapterCache(TEST_TARGETS);
    const { feeds } = cache.lookup({
      adapters: [
        { adapter: fog, weight: 0.5 },
        { adapter: night, weight: 0.5 },
      ],
      method: 'cat',
    });
    expect(feeds['enc.attn0.qkv.lora_A']!.dims).toEqual([8, 16]);
    expect(feeds['enc.attn0.qkv.lora_B']!.dims).toEqual([48, 8]);
    expect(feeds['enc.attn0.qkv.lora_A']!.type).toBe('float32');
    // the fed tensors are the exact merge
    const target = TEST_TARGETS[1]!;
    const A = feeds[target.inputA]!.data as Float32Array;
    const B = feeds[target.inputB]!.data as Float32Array;
    const delta = new Float64Array(target.out * target.in);
    for (let o = 0; o < target.out; o++)
      for (let j = 0; j < 8; j++)
        for (let c = 0; c < target.in; c++) delta[o * target.in + c] = delta[o * target.in + c]! + B[o * 8 + j]! * A[j * target.in + c]!;
    expect(
      relativeError(
        delta,
        denseDelta(
          [
            { adapter: fog, weight: 0.5 },
            { adapter: night, weight: 0.5 },
          ],
          target,
        ),
      ),
    ).toBeLessThan(1e-6);
    expect(feedsFromMerge(new Map(), TEST_TARGETS).byteLength).toBe(TEST_TARGETS.reduce((s, t) => s + 4 * (t.in + t.out), 0));
  });

  it('keys on adapter versions, weights and method, not on order', () => {
    const a = MergedAdapterCache.keyOf({
      adapters: [
        { adapter: fog, weight: 0.6 },
        { adapter: night, weight: 0.4 },
      ],
      method: 'cat',
    });
    const b = MergedAdapterCache.keyOf({
      adapters: [
        { adapter: night, weight: 0.4 },
        { adapter: fog, weight: 0.6 },
      ],
      method: 'cat',
    });
    expect(a).toBe(b);
    expect(
      MergedAdapterCache.keyOf({
        adapters: [
          { adapter: fog, weight: 0.6 },
          { adapter: night, weight: 0.4 },
        ],
        method: 'linear',
      }),
    ).not.toBe(a);
    expect(
      MergedAdapterCache.keyOf({
        adapters: [
          { adapter: fog, weight: 0.55 },
          { adapter: night, weight: 0.45 },
        ],
        method: 'cat',
      }),
    ).not.toBe(a);
    const fog2 = makeAdapter('fog', 1, 4, 'v-new');
    expect(
      MergedAdapterCache.keyOf({
        adapters: [
          { adapter: fog2, weight: 0.6 },
          { adapter: night, weight: 0.4 },
        ],
        method: 'cat',
      }),
    ).not.toBe(a);
    expect(MergedAdapterCache.keyOf({ adapters: [{ adapter: fog, weight: 1 }], method: 'svd', svdRank: 2 })).not.toBe(
      MergedAdapterCache.keyOf({ adapters: [{ adapter: fog, weight: 1 }], method: 'svd', svdRank: 3 }),
    );
  });

  it('hits on the second lookup, evicts the least recently used beyond the byte budget, and reports metrics', async () => {
    const before = {
      hits: await metric('streamseg_adapter_cache_hits_total'),
      misses: await metric('streamseg_adapter_cache_misses_total'),
      evictions: await metric('streamseg_adapter_cache_evictions_total'),
      bytes: await metric('streamseg_adapter_cache_bytes'),
    };
    const cache = new MergedAdapterCache(TEST_TARGETS, { maxBytes: 2 * catBytes });
    const fn = {
      adapters: [
        { adapter: fog, weight: 0.5 },
        { adapter: night, weight: 0.5 },
      ],
      method: 'cat' as const,
    };
    const fr = {
      adapters: [
        { adapter: fog, weight: 0.5 },
        { adapter: rain, weight: 0.5 },
      ],
      method: 'cat' as const,
    };
    const nr = {
      adapters: [
        { adapter: night, weight: 0.5 },
        { adapter: rain, weight: 0.5 },
      ],
      method: 'cat' as const,
    };
    const first = cache.lookup(fn);
    expect(first.hit).toBe(false);
    expect(first.mergeMs).toBeGreaterThan(0);
    const second = cache.lookup(fn);
    expect(second.hit).toBe(true);
    expect(second.feeds).toBe(first.feeds);
    cache.lookup(fr);
    expect(cache.bytes).toBe(2 * catBytes);
    cache.lookup(fn); // fn is now the most recent
    cache.lookup(nr); // evicts fr
    expect(cache.size).toBe(2);
    expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);
    expect(await metric('streamseg_adapter_cache_hits_total')).toBe(before.hits + 2);
    expect(await metric('streamseg_adapter_cache_misses_total')).toBe(before.misses + 3);
    expect(await metric('streamseg_adapter_cache_evictions_total')).toBe(before.evictions + 1);
    expect(await metric('streamseg_adapter_cache_bytes')).toBe(before.bytes + 2 * catBytes);
    const histogram = await metricsRegistry.getSingleMetric('streamseg_adapter_merge_seconds')!.get();
    expect(
      (histogram.values as { metricName?: string; labels: Record<string, unknown>; value: number }[]).find(
        (v) => v.metricName === 'streamseg_adapter_merge_seconds_count' && v.labels.method === 'cat',
      )!.value,
    ).toBeGreaterThanOrEqual(3);

    // fr was the one evicted: fn is still there, fr is merged again.
    expect(cache.lookup(fn).hit).toBe(true);
    expect(cache.lookup(fr).hit).toBe(false);
  });

  it('returns but does not keep a merge bigger than the budget', () => {
    const cache = new MergedAdapterCache(TEST_TARGETS, { maxBytes: 100 });
    const res = cache.lookup({ adapters: [{ adapter: fog, weight: 1 }], method: 'linear' });
    expect(res.hit).toBe(false);
    expect(cache.size).toBe(0);
    expect(cache.lookup({ adapters: [{ adapter: fog, weight: 1 }], method: 'linear' }).hit).toBe(false);
    expect(() => new MergedAdapterCache(TEST_TARGETS, { maxBytes: -1 })).toThrow(/maxBytes/);
  });
});
