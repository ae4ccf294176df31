import { z } from 'zod';

/**
 * Options of per-scene adapter retrieval and merging (src/workers/adapters/retrieval.ts),
 * shared because job schemas and config carry overrides of them.
 */

/** How retrieved adapters are merged (see src/workers/adapters/merge.ts). */
export const MERGE_METHODS = ['linear', 'cat', 'svd'] as const;
export type MergeMethod = (typeof MERGE_METHODS)[number];

/**
 * Options of retrieval and merging. Every field has a default (below); a job may override
 * any subset with a `retrieval` object validated by `retrievalOverridesSchema`.
 */
export const retrievalOptionsSchema = z
  .object({
    /** Distance between embeddings: `cosine` = 1 − cos θ (0..2), `l2` = Euclidean. @defaultValue 'cosine' */
    metric: z.enum(['cosine', 'l2']),
    /** Most adapters merged per scene. @defaultValue 2 (best held-out mIoU in `bench/adapters-eval-sweep.ts` on models/default) */
    topK: z.number().int().min(1).max(32),
    /** Distances → weights: softmax(−d/τ), inverse distance (1/d), or uniform 1/k. @defaultValue 'inverse' (softmax at τ=0.02 was nearly top-1) */
    weighting: z.enum(['softmax', 'inverse', 'uniform']),
    /** τ of the softmax weighting, in units of the metric. @defaultValue 0.02 */
    temperature: z.number().positive(),
    /**
     * Adapters farther than this from the scene are not retrieved; unset: no threshold. In
     * units of the metric; the default suits cosine (0..2). Scenes no adapter was trained for
     * (clear, on models/default: nearest centroid at cosine distance ≈ 0.86) then run the base
     * model instead of a wrong domain's adapter.
     * @defaultValue 0.5 (bench/adapters-eval-sweep.ts on models/default: clear keeps the base's
     * 80.0 mIoU instead of 69.6 with adapters, held-out compositions 34.5 vs top-1 33.4)
     */
    maxDistance: z.number().nonnegative().optional(),
    /** When no adapter lies within maxDistance: the base model, or the nearest adapter alone. @defaultValue 'base' */
    beyondThreshold: z.enum(['base', 'nearest']),
    /** How the retrieved adapters are merged (see merge.ts). @defaultValue 'cat' */
    method: z.enum(MERGE_METHODS),
    /** Rank of an `svd` merge; unset: the largest input rank. */
    svdRank: z.number().int().min(1).max(1024).optional(),
    /**
     * Weights are rounded to multiples of this (then renormalised) so that scenes with nearly
     * the same mix share one cached merge. @defaultValue 0.05
     */
    weightQuantum: z.number().positive().max(0.5),
    /**
     * Confidence guard: on a scene's first batch the worker runs the base model beside the
     * merged adapter and keeps the adapter only if the network's mean winning-class probability
     * with it is at least the base's plus this margin; otherwise the whole scene runs the base.
     * Unset: no guard (retrieval alone decides). Costs one extra inference per scene.
     */
    guardMargin: z.number().min(-1).max(1).optional(),
  })
  .strict();

export type RetrievalOptions = z.infer<typeof retrievalOptionsSchema>;

/** A job's (or the config's) overrides: any subset of RetrievalOptions. Add as `retrieval` to job schemas. */
export const retrievalOverridesSchema = retrievalOptionsSchema.partial().strict();
export type RetrievalOverrides = z.infer<typeof retrievalOverridesSchema>;

export const DEFAULT_RETRIEVAL_OPTIONS: Readonly<RetrievalOptions> = Object.freeze({
  metric: 'cosine',
  topK: 2,
  weighting: 'inverse',
  temperature: 0.02,
  maxDistance: 0.5,
  beyondThreshold: 'base',
  method: 'cat',
  svdRank: undefined,
  weightQuantum: 0.05,
  guardMargin: undefined,
});
