import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRIEVAL_OPTIONS,
  distanceWeights,
  embeddingDistance,
  quantiseWeights,
  resolveRetrievalOptions,
  retrievalOverridesSchema,
  retrieveAdapters,
  type RetrievalCandidate,
} from '../../src/workers/adapters/retrieval.js';

const v = (...x: number[]) => Float32Array.from(x);
const unit = (...x: number[]) => {
  const n = Math.hypot(...x);
  return Float32Array.from(x.map((e) => e / n));
};

const candidates: RetrievalCandidate[] = [
  { name: 'fog', centroids: [unit(1, 0, 0)] },
  { name: 'night', centroids: [unit(0, 1, 0)] },
  { name: 'rain', centroids: [unit(0, 0, 1), unit(0.2, 0.2, -1)] },
  { name: 'empty', centroids: [] },
];

describe('retrieval', () => {
  it('measures cosine and L2 distance', () => {
    expect(embeddingDistance(v(1, 0), v(2, 0), 'cosine')).toBeCloseTo(0, 12);
    expect(embeddingDistance(v(1, 0), v(0, 3), 'cosine')).toBeCloseTo(1, 12);
    expect(embeddingDistance(v(1, 0), v(-1, 0), 'cosine')).toBeCloseTo(2, 12);
    expect(embeddingDistance(v(0, 0), v(1, 0), 'cosine')).toBe(1);
    expect(embeddingDistance(v(1, 2), v(4, 6), 'l2')).toBeCloseTo(5, 12);
    expect(() => embeddingDistance(v(1), v(1, 2), 'l2')).toThrow(/sizes differ/);
  });

  it('weights by softmax(−d/τ), inverse distance or uniformly, summing to 1', () => {
    const soft = distanceWeights([0.1, 0.2], { weighting: 'softmax', temperature: 0.1 });
    expect(soft[0]! / soft[1]!).toBeCloseTo(Math.E, 10);
    expect(soft[0]! + soft[1]!).toBeCloseTo(1, 12);
    expect(distanceWeights([0.1, 0.3], { weighting: 'inverse', temperature: 1 })).toEqual([0.75, 0.25].map((x) => expect.closeTo(x, 12)));
    expect(distanceWeights([0, 0.3], { weighting: 'inverse', temperature: 1 })).toEqual([1, 0]);
    expect(distanceWeights([0.5, 0.1, 0.9], { weighting: 'uniform', temperature: 1 })).toEqual([1 / 3, 1 / 3, 1 / 3]);
    // large distances over a small τ stay finite (softmax is shifted by the minimum)
    expect(distanceWeights([500, 501], { weighting: 'softmax', temperature: 0.01 })[0]).toBeCloseTo(1, 12);
  });

  it('quantises weights so nearly equal mixes share a cache key', () => {
    expect(quantiseWeights([0.62, 0.38], 0.05)).toEqual([0.6, 0.4].map((x) => expect.closeTo(x, 12)));
    expect(quantiseWeights([0.61, 0.39], 0.05)).toEqual(quantiseWeights([0.62, 0.38], 0.05));
    expect(quantiseWeights([0.97, 0.02, 0.01], 0.05)).toEqual([1, 0, 0]);
    expect(quantiseWeights([0.34, 0.33, 0.33], 0.5)).toEqual([1 / 3, 1 / 3, 1 / 3]);
    expect(quantiseWeights([0.24, 0.19, 0.19, 0.19, 0.19], 0.5)).toEqual([1, 0, 0, 0, 0]);
  });

  it('ranks by the nearest centroid and merges the top k', () => {
    const scene = unit(0.8, 0.6, 0);
    const result = retrieveAdapters(scene, candidates, { ...DEFAULT_RETRIEVAL_OPTIONS, topK: 2, weighting: 'softmax', temperature: 0.1 });
    expect(result.ranking.map((r) => r.name)).toEqual(['fog', 'night', 'rain']);
    expect(result.selected.map((s) => s.name)).toEqual(['fog', 'night']);
    expect(result.selected[0]!.distance).toBeCloseTo(0.2, 6);
    // softmax(−[0.2, 0.4]/0.1) = [0.881, 0.119] → quantised to 0.05
    expect(result.selected.map((s) => s.weight)).toEqual([0.9, 0.1].map((x) => expect.closeTo(x, 12)));
    expect(result.fallback).toBe('none');
    // min over an adapter's centroids: rain's second centroid is nearer to this scene
    const r2 = retrieveAdapters(unit(0.2, 0.2, -1), candidates, DEFAULT_RETRIEVAL_OPTIONS);
    expect(r2.ranking[0]).toEqual({ name: 'rain', distance: expect.closeTo(0, 6) });
  });

  it('falls back to the base model, or to the nearest adapter alone, beyond maxDistance', () => {
    const far = unit(-1, -1, -0.1);
    const base = retrieveAdapters(far, candidates, { ...DEFAULT_RETRIEVAL_OPTIONS, maxDistance: 0.5 });
    expect(base).toMatchObject({ selected: [], fallback: 'base' });
    const nearest = retrieveAdapters(far, candidates, { ...DEFAULT_RETRIEVAL_OPTIONS, maxDistance: 0.5, beyondThreshold: 'nearest' });
    expect(nearest.fallback).toBe('nearest');
    expect(nearest.selected).toEqual([{ name: nearest.ranking[0]!.name, distance: nearest.ranking[0]!.distance, weight: 1 }]);
    // the threshold also trims the top k
    const trimmed = retrieveAdapters(unit(0.8, 0.6, 0), candidates, { ...DEFAULT_RETRIEVAL_OPTIONS, maxDistance: 0.3 });
    expect(trimmed.selected.map((s) => s.name)).toEqual(['fog']);
    expect(retrieveAdapters(far, [], DEFAULT_RETRIEVAL_OPTIONS)).toEqual({ selected: [], ranking: [], fallback: 'none' });
  });

  it('resolves defaults, config and job overrides in order and rejects impossible values', () => {
    const options = resolveRetrievalOptions({ topK: 5, method: 'linear' }, { topK: 2 });
    expect(options).toMatchObject({ topK: 2, method: 'linear', metric: 'cosine' });
    expect(() => resolveRetrievalOptions({ temperature: 0 })).toThrow(/temperature/);
    expect(() => resolveRetrievalOptions({ topK: 0 })).toThrow(/topK/);
    expect(retrievalOverridesSchema.safeParse({ topK: 2, weighting: 'inverse' }).success).toBe(true);
    expect(retrievalOverridesSchema.safeParse({ topk: 2 }).success).toBe(false);
    expect(retrievalOverridesSchema.safeParse({ method: 'ties' }).success).toBe(false);
  });
});

describe('retrieval with the base domain as a candidate', () => {
  const withBase: RetrievalCandidate[] = [...candidates.filter((c) => c.name !== 'empty'), { name: 'clear', centroids: [unit(1, 1, 1)], base: true }];
  const options = resolveRetrievalOptions({ topK: 2, maxDistance: undefined, weighting: 'inverse' });

  it('runs the base model when the base domain is nearest (a scene like the training domain)', () => {
    const result = retrieveAdapters(unit(1, 1, 0.9), withBase, options);
    expect(result.selected).toEqual([]);
    expect(result.fallback).toBe('base-domain');
    expect(result.ranking[0]!.name).toBe('(base)');
  });

  it('gives the base domain its share when it is among the top k: adapter weights sum below 1', () => {
    const result = retrieveAdapters(unit(1, 0.3, 0.3), withBase, options);
    expect(result.ranking.map((r) => r.name).slice(0, 2)).toEqual(['fog', '(base)']);
    expect(result.selected.map((s) => s.name)).toEqual(['fog']);
    const total = result.selected.reduce((a, s) => a + s.weight, 0);
    expect(total).toBeGreaterThan(0.3);
    expect(total).toBeLessThan(1);
  });

  it('never selects the base candidate as an adapter, whatever k', () => {
    const result = retrieveAdapters(unit(1, 0.5, 0.5), withBase, { ...options, topK: 4 });
    expect(result.selected.every((s) => s.name !== '(base)')).toBe(true);
  });
});
