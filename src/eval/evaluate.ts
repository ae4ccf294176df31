import ort from 'onnxruntime-node';
import type { Logger } from '../shared/logger.js';
import type { ModelPackage } from '../shared/model-manifest.js';
import { AdapterRegistry } from '../workers/adapters/adapter-registry.js';
import { OnnxEmbedder, meanEmbedding } from '../workers/adapters/embedder.js';
import { MergedAdapterCache, zeroFeeds, type LoraFeeds } from '../workers/adapters/merged-adapter-cache.js';
import type { MergeMethod } from '../workers/adapters/merge.js';
import { resolveRetrievalOptions, retrieveAdapters, type RetrievalOptions, type RetrievalOverrides } from '../workers/adapters/retrieval.js';
import { OnnxSessionRepository } from '../workers/segmentation/onnx-session.repository.js';
import { Confusion } from './miou.js';
import type { EvalClip } from './test-set.js';

/** The ways a clip is segmented; each scored by mIoU per condition. */
export const EVAL_METHODS = ['base', 'oracle', 'top1', 'uniform', 'weighted', 'weightedCat'] as const;
export type EvalMethod = (typeof EVAL_METHODS)[number];

export interface EvalConditionResult {
  name: string;
  heldOut: boolean;
  /** mIoU (0..1) per method; `oracle` only where an adapter of this condition exists. */
  miou: Partial<Record<EvalMethod, number>> & Record<'base' | 'top1' | 'uniform' | 'weighted' | 'weightedCat', number>;
  clips: number;
  /** Mean merge weight per adapter over the condition's clips (what retrieval chose). */
  mix: Record<string, number>;
}

export interface EvalReport {
  conditions: EvalConditionResult[];
  /** Share of single-condition clips whose nearest adapter is the condition's own; null when there are none. */
  retrievalAccuracy: number | null;
  settings: {
    model: string;
    retrieval: RetrievalOptions;
    embeddingFrames: number;
    clips: number;
    frames: number;
    seconds: number;
  };
}

export interface EvaluateOptions {
  pkg: ModelPackage;
  clips: readonly EvalClip[];
  /** Retrieval settings (top-k, metric, weighting, τ…); `method` is ignored: each method is scored. */
  retrieval?: RetrievalOverrides;
  /** Frames of a clip the scene embedding averages. @defaultValue 4 */
  embeddingFrames?: number;
  /** ORT threads per session; 0 lets ORT decide. @defaultValue 0 */
  intraOpThreads?: number;
  logger: Logger;
  onClip?: (done: number, total: number) => void;
  /** Methods to score (e.g. only the merges when sweeping retrieval settings). @defaultValue all of EVAL_METHODS */
  methods?: readonly EvalMethod[];
}

/**
 * Scores base, oracle, retrieved top-1, uniform and distance-weighted merges of the top k
 * (linear and cat) on clips with ground truth, the way the workers choose adapters: one
 * embedding per clip from its first frames, retrieval against the package's centroids.
 */
export async function evaluateAdapters(options: EvaluateOptions): Promise<EvalReport> {
  const started = performance.now();
  const { pkg, logger } = options;
  const { manifest } = pkg;
  const retrieval = resolveRetrievalOptions(options.retrieval);
  const k = options.embeddingFrames ?? 4;
  const registry = await AdapterRegistry.open({ pkg, logger });
  for (const problem of registry.problems()) logger.warn(problem, 'adapter refused');
  const entries = registry.entries();
  const byCondition = new Map(entries.map((e) => [e.condition ?? e.name, e]));
  const candidates = registry.candidates();
  const session = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: options.intraOpThreads ?? 0, logger });
  const embedder = await OnnxEmbedder.create(pkg, { intraOpThreads: options.intraOpThreads });
  const cache = new MergedAdapterCache(manifest.lora.targets, { maxBytes: 256 * 1024 * 1024 });
  const base = zeroFeeds(manifest.lora.targets);
  const classFeed = new ort.Tensor('float32', Float32Array.from(manifest.classes.flatMap((c) => c.embedding)), [manifest.classes.length, manifest.classEmbeddings.dim]);
  const identity = Uint8Array.from(manifest.classes.map((_, i) => i));

  const confusion = new Map<string, Map<EvalMethod, Confusion>>();
  const mixes = new Map<string, { clips: number; weights: Record<string, number> }>();
  let retrievalHits = 0;
  let retrievalTotal = 0;
  let frames = 0;

  const merged = (adapters: { name: string; weight: number }[], method: MergeMethod): LoraFeeds =>
    cache.lookup({ adapters: adapters.map((a) => ({ adapter: registry.get(a.name)!.adapter, weight: a.weight })), method }).feeds;

  try {
    for (const [ci, clip] of options.clips.entries()) {
      if (clip.width !== manifest.input.width || clip.height !== manifest.input.height) {
        throw new RangeError(`clip ${ci} is ${clip.width}x${clip.height}, the model input is ${manifest.input.width}x${manifest.input.height}`);
      }
      const embedding = meanEmbedding(await embedder.embedFrames(clip.frames.slice(0, k)));
      const ranked = retrieveAdapters(embedding, candidates, { ...retrieval, topK: candidates.length, maxDistance: undefined });
      const weighted = retrieveAdapters(embedding, candidates, retrieval);
      const top = weighted.selected.length > 0 ? weighted.selected : ranked.selected.slice(0, 1);
      const feedsBy: Partial<Record<EvalMethod, LoraFeeds>> = { base };
      const own = byCondition.get(clip.condition);
      if (own) feedsBy.oracle = merged([{ name: own.name, weight: 1 }], 'cat');
      if (ranked.ranking.length > 0) {
        const nearest = ranked.ranking[0]!.name;
        feedsBy.top1 = merged([{ name: nearest, weight: 1 }], 'cat');
        const uniform = top.map((t) => ({ name: t.name, weight: 1 / top.length }));
        feedsBy.uniform = merged(uniform, 'linear');
        feedsBy.weighted = top.length > 0 && weighted.selected.length > 0 ? merged(weighted.selected, 'linear') : base;
        feedsBy.weightedCat = top.length > 0 && weighted.selected.length > 0 ? merged(weighted.selected, 'cat') : base;
        if (!clip.heldOut && own) {
          retrievalTotal++;
          if (registry.get(nearest)?.condition === clip.condition || nearest === own.name) retrievalHits++;
        }
      } else {
        feedsBy.top1 = feedsBy.uniform = feedsBy.weighted = feedsBy.weightedCat = base;
      }
      const mix = mixes.get(clip.condition) ?? { clips: 0, weights: {} };
      mix.clips++;
      for (const s of weighted.selected) mix.weights[s.name] = (mix.weights[s.name] ?? 0) + s.weight;
      mixes.set(clip.condition, mix);

      const perMethod = confusion.get(clip.condition) ?? new Map<EvalMethod, Confusion>();
      confusion.set(clip.condition, perMethod);
      for (const method of options.methods ?? EVAL_METHODS) {
        const feeds = feedsBy[method];
        if (!feeds) continue;
        const { masks: predicted } = await session.segment({ frames: clip.frames, feeds: { [manifest.classEmbeddings.input]: classFeed, ...feeds }, classOf: identity });
        let conf = perMethod.get(method);
        if (!conf) perMethod.set(method, (conf = new Confusion(manifest.classes.length)));
        predicted.forEach((mask, i) => conf.add(clip.masks[i]!, mask));
      }
      frames += clip.frames.length;
      options.onClip?.(ci + 1, options.clips.length);
    }
  } finally {
    await session.release();
    await embedder.close();
    await registry.close();
  }

  const conditions: EvalConditionResult[] = [];
  for (const [name, perMethod] of confusion) {
    const clip = options.clips.find((c) => c.condition === name)!;
    const miou = Object.fromEntries([...perMethod].map(([m, c]) => [m, round4(c.miou())])) as EvalConditionResult['miou'];
    const mix = mixes.get(name)!;
    conditions.push({
      name,
      heldOut: clip.heldOut,
      miou,
      clips: mix.clips,
      mix: Object.fromEntries(Object.entries(mix.weights).map(([a, w]) => [a, round4(w / mix.clips)]).sort((a, b) => Number(b[1]) - Number(a[1]))),
    });
  }
  return {
    conditions,
    retrievalAccuracy: retrievalTotal === 0 ? null : round4(retrievalHits / retrievalTotal),
    settings: {
      model: `${manifest.name}@${manifest.version}`,
      retrieval,
      embeddingFrames: k,
      clips: options.clips.length,
      frames,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    },
  };
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

/** Averages of a method over the held-out conditions. */
export function heldOutMeans(report: EvalReport): Partial<Record<EvalMethod, number>> {
  const held = report.conditions.filter((c) => c.heldOut);
  const out: Partial<Record<EvalMethod, number>> = {};
  for (const m of EVAL_METHODS) {
    const values = held.map((c) => c.miou[m]).filter((v): v is number => v !== undefined);
    if (values.length > 0) out[m] = round4(values.reduce((a, b) => a + b, 0) / values.length);
  }
  return out;
}

/** The issue's acceptance on held-out compositions: weighted beats base on each, and top-1 on average. */
export function acceptance(report: EvalReport, method: 'weighted' | 'weightedCat' = 'weighted'): { beatsBaseEverywhere: boolean; beatsTop1OnAverage: boolean } {
  const held = report.conditions.filter((c) => c.heldOut);
  const means = heldOutMeans(report);
  return {
    beatsBaseEverywhere: held.length > 0 && held.every((c) => c.miou[method] > c.miou.base),
    beatsTop1OnAverage: (means[method] ?? 0) > (means.top1 ?? 0),
  };
}

/** The report as a fixed-width table (mIoU in %). */
export function formatEvalTable(report: EvalReport): string {
  const header = ['condition', 'held-out', 'base', 'oracle', 'top-1', 'uniform', 'weighted', 'weighted-cat', 'retrieved mix'];
  const pct = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '—' : (100 * v).toFixed(1));
  const rows = report.conditions.map((c) => [
    c.name,
    c.heldOut ? 'yes' : '',
    pct(c.miou.base),
    pct(c.miou.oracle),
    pct(c.miou.top1),
    pct(c.miou.uniform),
    pct(c.miou.weighted),
    pct(c.miou.weightedCat),
    Object.entries(c.mix).slice(0, 3).map(([a, w]) => `${a} ${w.toFixed(2)}`).join(', '),
  ]);
  const means = heldOutMeans(report);
  if (Object.keys(means).length > 0) {
    rows.push(['held-out mean', '', pct(means.base), pct(means.oracle), pct(means.top1), pct(means.uniform), pct(means.weighted), pct(means.weightedCat), '']);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const acc = report.retrievalAccuracy === null ? '—' : `${(100 * report.retrievalAccuracy).toFixed(1)}%`;
  const s = report.settings;
  const r = s.retrieval;
  return [
    `mIoU (%) on ${s.clips} clips / ${s.frames} frames, model ${s.model}; retrieval: ${r.metric}, top-${r.topK}, ${r.weighting}${r.weighting === 'softmax' ? ` τ=${r.temperature}` : ''}; embedding from ${s.embeddingFrames} frames`,
    line(header),
    line(header.map((_, i) => '-'.repeat(widths[i]!))),
    ...rows.map(line),
    '',
    `retrieval accuracy (single conditions, top-1 = own adapter): ${acc}`,
    `weighted = linear merge with distance weights; weighted-cat = exact (cat) merge with the same weights; uniform = linear, equal weights; ${s.seconds}s`,
  ].join('\n');
}
