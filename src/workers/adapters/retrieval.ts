import { DEFAULT_RETRIEVAL_OPTIONS, retrievalOptionsSchema, type RetrievalOptions, type RetrievalOverrides } from '../../shared/retrieval-options.js';

export {
  DEFAULT_RETRIEVAL_OPTIONS,
  retrievalOptionsSchema,
  retrievalOverridesSchema,
  type RetrievalOptions,
  type RetrievalOverrides,
} from '../../shared/retrieval-options.js';

/**
 * Adapter retrieval (DESIGN "Why adapters per scene"): rank adapters by the distance of the
 * scene embedding to their domain centroids, keep the top k within a distance threshold, turn
 * distances into merge weights.
 */

/** Defaults, then each layer of overrides in order (config, then job); validated once. */
export function resolveRetrievalOptions(...layers: (RetrievalOverrides | undefined)[]): RetrievalOptions {
  const merged: Record<string, unknown> = { ...DEFAULT_RETRIEVAL_OPTIONS };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer ?? {})) if (value !== undefined) merged[key] = value;
  }
  const parsed = retrievalOptionsSchema.safeParse(merged);
  if (!parsed.success) {
    throw new RangeError(`invalid retrieval options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** An adapter as retrieval sees it: a name and one or more centroids in embedding space. */
export interface RetrievalCandidate {
  name: string;
  centroids: readonly Float32Array[];
  /**
   * The base model's own domain (a package's `base` centroid): a candidate that stands for "no
   * adapter". Nearest, the scene runs the base model; among the top k, its weight is a share of
   * nothing, so the adapters' weights sum to less than 1 (a weaker merged ΔW).
   */
  base?: boolean;
}

/** Name the base candidate appears under in rankings and reports. */
export const BASE_CANDIDATE = '(base)';

export interface RetrievedAdapter {
  name: string;
  distance: number;
  weight: number;
}

export interface RetrievalResult {
  /**
   * Adapters to merge with their (quantised) weights; empty = base model. The weights sum to 1,
   * or to 1 − (the base candidate's weight) when the base domain is among the top k.
   */
  selected: RetrievedAdapter[];
  /** Every candidate's distance, nearest first (for reports). */
  ranking: { name: string; distance: number }[];
  /**
   * `base` or `nearest` when maxDistance excluded every adapter and beyondThreshold applied;
   * `base-domain` when the base candidate was the nearest; else `none`.
   */
  fallback: 'none' | 'base' | 'nearest' | 'base-domain';
}

/** Distance of two vectors under `metric` (cosine distance is 1 − cos θ; zero vectors are at distance 1). */
export function embeddingDistance(a: Float32Array, b: Float32Array, metric: RetrievalOptions['metric']): number {
  if (a.length !== b.length) throw new RangeError(`embedding sizes differ: ${a.length} vs ${b.length}`);
  if (metric === 'l2') {
    let s = 0;
    for (let i = 0; i < a.length; i++) {
      const d = a[i]! - b[i]!;
      s += d * d;
    }
    return Math.sqrt(s);
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 || nb === 0) return 1;
  return Math.max(0, 1 - dot / Math.sqrt(na * nb));
}

/** Weights from distances (sum 1). */
export function distanceWeights(distances: readonly number[], options: Pick<RetrievalOptions, 'weighting' | 'temperature'>): number[] {
  if (distances.length === 0) return [];
  let raw: number[];
  if (options.weighting === 'uniform') raw = distances.map(() => 1);
  else if (options.weighting === 'inverse') {
    const exact = distances.findIndex((d) => d <= 1e-9);
    raw = exact >= 0 ? distances.map((_, i) => (i === exact ? 1 : 0)) : distances.map((d) => 1 / d);
  } else {
    const min = Math.min(...distances);
    raw = distances.map((d) => Math.exp(-(d - min) / options.temperature));
  }
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((w) => w / sum);
}

/** Rounds weights to multiples of `quantum`, drops zeros, renormalises; keeps the largest if all round to 0. */
export function quantiseWeights(weights: readonly number[], quantum: number): number[] {
  const steps = weights.map((w) => Math.round(w / quantum));
  if (steps.every((s) => s <= 0)) {
    const best = weights.indexOf(Math.max(...weights));
    return weights.map((_, i) => (i === best ? 1 : 0));
  }
  const total = steps.reduce((a, s) => a + Math.max(0, s), 0);
  return steps.map((s) => Math.max(0, s) / total);
}

/** Ranks candidates by their nearest centroid, applies top-k and the threshold, weights the rest. */
export function retrieveAdapters(embedding: Float32Array, candidates: readonly RetrievalCandidate[], options: RetrievalOptions): RetrievalResult {
  const ranked = candidates
    .filter((c) => c.centroids.length > 0)
    .map((c) => ({
      name: c.base ? BASE_CANDIDATE : c.name,
      distance: Math.min(...c.centroids.map((centroid) => embeddingDistance(embedding, centroid, options.metric))),
      base: c.base === true,
    }))
    .sort((a, b) => a.distance - b.distance || (a.name < b.name ? -1 : 1));
  const ranking = ranked.map(({ name, distance }) => ({ name, distance }));
  const adapters = ranked.filter((r) => !r.base);
  if (adapters.length === 0) return { selected: [], ranking, fallback: 'none' };
  if (ranked[0]!.base) return { selected: [], ranking, fallback: 'base-domain' };

  const within = options.maxDistance === undefined ? ranked : ranked.filter((r) => r.distance <= options.maxDistance!);
  if (within.filter((r) => !r.base).length === 0) {
    if (options.beyondThreshold === 'base') return { selected: [], ranking, fallback: 'base' };
    const nearest = adapters[0]!;
    return { selected: [{ name: nearest.name, distance: nearest.distance, weight: 1 }], ranking, fallback: 'nearest' };
  }
  const top = within.slice(0, options.topK);
  const weights = quantiseWeights(
    distanceWeights(
      top.map((t) => t.distance),
      options,
    ),
    options.weightQuantum,
  );
  const selected = top
    .map((t, i) => ({ name: t.name, distance: t.distance, weight: weights[i]!, base: t.base }))
    .filter((s) => s.weight > 0 && !s.base)
    .map(({ name, distance, weight }) => ({ name, distance, weight }));
  return { selected, ranking, fallback: 'none' };
}
