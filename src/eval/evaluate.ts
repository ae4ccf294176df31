import ort from 'onnxruntime-node';
import { MaskUnletterboxer } from '../shared/letterbox.js';
import type { Logger } from '../shared/logger.js';
import { planModelInput, type ModelInputPlan } from '../shared/model-input-plan.js';
import type { ModelPackage } from '../shared/model-manifest.js';
import { FfmpegRepository } from '../producers/ffmpeg.repository.js';
import { ModelInputFrames } from '../producers/model-input-frames.js';
import { SceneCutDetector } from '../producers/scene-cut-detector.js';
import { AdapterRegistry } from '../workers/adapters/adapter-registry.js';
import { OnnxEmbedder, meanEmbedding } from '../workers/adapters/embedder.js';
import { MergedAdapterCache, zeroFeeds, type LoraFeeds } from '../workers/adapters/merged-adapter-cache.js';
import type { MergeMethod } from '../workers/adapters/merge.js';
import { resolveRetrievalOptions, retrieveAdapters, type RetrievalOptions, type RetrievalOverrides } from '../workers/adapters/retrieval.js';
import { OnnxSessionRepository } from '../workers/segmentation/onnx-session.repository.js';
import { Confusion } from './miou.js';
import type { EvalVideo } from './eval-videos.js';

/**
 * How a scene is segmented; each is scored by mIoU per condition and size.
 * - `base`: no adapter.
 * - `top1`: the nearest adapter alone (the base domain not considered).
 * - `uniform`: the top k adapters, equal weights, linear merge.
 * - `weighted`: the product's retrieval (base domain included) with a linear merge.
 * - `weightedCat`: the product's retrieval and merge as configured (cat by default): what
 *   `streamseg run` does.
 * - `guarded`: weighted-cat, kept only where the network is at least as sure of its masks with
 *   the merged adapter as without it on the scene's first batch (mean winning-class
 *   probability; see the guard margin), else the base model.
 * - `oracle`: single conditions, the condition's own adapter.
 * - `oracleSingles`: compositions, the best single adapter in hindsight.
 * - `componentOracle`: compositions, the true components merged (equal weights, cat).
 */
export const EVAL_METHODS = ['base', 'top1', 'uniform', 'weighted', 'weightedCat', 'guarded', 'oracle', 'oracleSingles', 'componentOracle'] as const;
export type EvalMethod = (typeof EVAL_METHODS)[number];

export interface EvalCell {
  /** Source size of the videos, `WxH`, and the model input they were planned to. */
  size: string;
  input: string;
  /** Condition (`fog+night`), or `style:<name>` for unseen styles over a condition. */
  condition: string;
  composition: boolean;
  style?: string;
  scenes: number;
  frames: number;
  miou: Partial<Record<EvalMethod, number>>;
  /** Scenes on which the product (weighted-cat) scored below the base; when both were scored. */
  scenesBelowBase?: number;
  /** Mean weight per adapter the product's retrieval chose over the cell's scenes. */
  mix: Record<string, number>;
}

export interface EvalReport {
  cells: EvalCell[];
  /** Single-condition scenes whose nearest adapter is the condition's own, per size and overall. */
  retrieval: { bySize: Record<string, { hits: number; total: number }>; hits: number; total: number };
  settings: { model: string; retrieval: RetrievalOptions; embeddingFrames: number; videos: number; frames: number; seconds: number };
}

export interface EvaluateOptions {
  pkg: ModelPackage;
  videos: readonly EvalVideo[];
  /** The product's retrieval settings (config + flags), as the workers resolve them. */
  retrieval?: RetrievalOverrides;
  /** Frames a scene's embedding averages (the workers' default). @defaultValue 4 */
  embeddingFrames?: number;
  /** Scene-cut settings of the producer. @defaultValue 0.3 and 4, the config's defaults */
  sceneThreshold?: number;
  minSceneFrames?: number;
  /** Frames per inference run (STREAMSEG_BATCH_FRAMES). @defaultValue 8 */
  batchFrames?: number;
  methods?: readonly EvalMethod[];
  /** `guarded` keeps the merge when its confidence is at least base's plus this. @defaultValue 0 */
  guardMargin?: number;
  intraOpThreads?: number;
  logger: Logger;
  onVideo?: (done: number, total: number) => void;
}

interface SceneFrames {
  /** Model inputs of the scene's frames, in order. */
  inputs: Buffer[];
  indices: number[];
}

/**
 * Scores segmentation through the product's own path: each video is decoded by the producer's
 * ffmpeg repository to the model input the producer plans for it, as the producer decodes a file
 * (ffmpeg scales a source it shrinks, `LetterboxResizer` enlarges a small one), cut into scenes
 * by the producer's detector on those frames, embedded and retrieved
 * per detected scene as the workers do (first frames, package index with the base domain),
 * segmented by the workers' session, and mapped back to source resolution by the sink's
 * unletterboxer. Masks are compared with ground truth at source resolution.
 */
export async function evaluateVideos(options: EvaluateOptions): Promise<EvalReport> {
  const started = performance.now();
  const { pkg, logger } = options;
  const { manifest } = pkg;
  const retrieval = resolveRetrievalOptions(options.retrieval);
  const methods = new Set(options.methods ?? EVAL_METHODS);
  const k = options.embeddingFrames ?? 4;
  const batchFrames = options.batchFrames ?? 8;
  const ffmpeg = new FfmpegRepository();
  const registry = await AdapterRegistry.open({ pkg, logger });
  for (const problem of registry.problems()) logger.warn(problem, 'adapter refused');
  const entries = registry.entries();
  const byCondition = new Map(entries.map((e) => [e.condition ?? e.name, e]));
  const candidates = registry.candidates();
  const adapterCandidates = candidates.filter((c) => !c.base);
  const session = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: options.intraOpThreads ?? 0, logger, inThread: false });
  const embedder = await OnnxEmbedder.create(pkg, { intraOpThreads: options.intraOpThreads });
  const cache = new MergedAdapterCache(manifest.lora.targets, { maxBytes: 256 * 1024 * 1024 });
  const base = zeroFeeds(manifest.lora.targets);
  const classFeed = new ort.Tensor('float32', Float32Array.from(manifest.classes.flatMap((c) => c.embedding)), [
    manifest.classes.length,
    manifest.classEmbeddings.dim,
  ]);
  const identity = Uint8Array.from(manifest.classes.map((_, i) => i));
  const modelClass = classRemapByName(manifest.classes.map((c) => c.name));

  const cells = new Map<string, { cell: EvalCell; confusion: Map<EvalMethod, Confusion>; singles: Map<string, Confusion>; mix: Map<string, number> }>();
  const retrievalStats: EvalReport['retrieval'] = { bySize: {}, hits: 0, total: 0 };
  let frames = 0;

  const merged = (adapters: readonly { name: string; weight: number }[], method: MergeMethod): LoraFeeds =>
    adapters.length === 0
      ? base
      : cache.lookup({ adapters: adapters.map((a) => ({ adapter: registry.get(a.name)!.adapter, weight: a.weight })), method }).feeds;

  try {
    for (const [vi, video] of options.videos.entries()) {
      const probe = await ffmpeg.probe({ kind: 'file', path: video.path });
      const plan = planModelInput(manifest.input, probe.width, probe.height);
      const unletterbox = new MaskUnletterboxer(plan.rect, plan.width, probe.width, probe.height);
      const scenes = await decodeScenes(ffmpeg, video.path, probe, plan, {
        threshold: options.sceneThreshold ?? 0.3,
        minSceneFrames: options.minSceneFrames ?? 4,
      });
      const sizeKey = `${probe.width}x${probe.height}`;
      const stats = (retrievalStats.bySize[sizeKey] ??= { hits: 0, total: 0 });
      for (const scene of scenes) {
        const embedding = meanEmbedding(await embedder.embedFrames(scene.inputs.slice(0, k), plan, plan.rect));
        const product = retrieveAdapters(embedding, candidates, retrieval);
        const ranked = retrieveAdapters(embedding, adapterCandidates, { ...retrieval, topK: adapterCandidates.length, maxDistance: undefined });
        const nearest = ranked.ranking[0]?.name;
        const top = ranked.ranking.slice(0, retrieval.topK);
        // A detected scene is scored under the condition of its first frame's ground-truth scene.
        const truth = video.sceneOf(scene.indices[0]!);
        const own = byCondition.get(truth.condition);
        logger.debug(
          { size: sizeKey, scene: scene.indices[0], condition: truth.condition, ranking: product.ranking, selected: product.selected },
          'eval scene retrieved',
        );
        if (!truth.composition && !truth.style && own && truth.condition !== 'clear') {
          stats.total++;
          retrievalStats.total++;
          if (nearest === own.name) {
            stats.hits++;
            retrievalStats.hits++;
          }
        }
        const feedsBy = new Map<EvalMethod, LoraFeeds>();
        feedsBy.set('base', base);
        if (nearest) feedsBy.set('top1', merged([{ name: nearest, weight: 1 }], 'cat'));
        feedsBy.set(
          'uniform',
          merged(
            top.map((t) => ({ name: t.name, weight: 1 / top.length })),
            'linear',
          ),
        );
        feedsBy.set('weighted', merged(product.selected, 'linear'));
        feedsBy.set('weightedCat', merged(product.selected, retrieval.method));
        if (!truth.composition && own) feedsBy.set('oracle', merged([{ name: own.name, weight: 1 }], 'cat'));
        if (methods.has('guarded')) {
          const merge = feedsBy.get('weightedCat')!;
          let keep = false;
          if (product.selected.length > 0) {
            // as the worker judges: on the scene's first batch
            const probe = scene.inputs.slice(0, batchFrames);
            const sure = async (feeds: LoraFeeds) => {
              const { confidence } = await session.segment({
                frames: probe,
                size: plan,
                feeds: { [manifest.classEmbeddings.input]: classFeed, ...feeds },
                classOf: identity,
                confidence: true,
              });
              return confidence!.reduce((a, b) => a + b, 0) / confidence!.length;
            };
            keep = (await sure(merge)) >= (await sure(base)) + (options.guardMargin ?? 0);
          }
          feedsBy.set('guarded', keep ? merge : base);
        }
        const components = truth.components.map((c) => byCondition.get(c)).filter((e) => e !== undefined);
        if (truth.composition && components.length === truth.components.length) {
          feedsBy.set(
            'componentOracle',
            merged(
              components.map((e) => ({ name: e.name, weight: 1 / components.length })),
              'cat',
            ),
          );
        }

        const cellKey = `${sizeKey}|${truth.label}`;
        let entry = cells.get(cellKey);
        if (!entry) {
          entry = {
            cell: {
              size: sizeKey,
              input: `${plan.width}x${plan.height}`,
              condition: truth.label,
              composition: truth.composition,
              style: truth.style,
              scenes: 0,
              frames: 0,
              miou: {},
              mix: {},
            },
            confusion: new Map(),
            singles: new Map(),
            mix: new Map(),
          };
          cells.set(cellKey, entry);
        }
        entry.cell.scenes++;
        entry.cell.frames += scene.indices.length;
        if (product.selected.length === 0) entry.mix.set('(base)', (entry.mix.get('(base)') ?? 0) + 1);
        for (const s of product.selected) entry.mix.set(s.name, (entry.mix.get(s.name) ?? 0) + s.weight);

        // Ground truth read once per scene, and one source-size buffer for the upscaled masks,
        // whatever the number of methods scored.
        const truthMasks = await Promise.all(scene.indices.map((index) => video.mask(index, modelClass)));
        const upscaled = new Uint8Array(probe.width * probe.height);
        const score = async (feeds: LoraFeeds, confusion: Confusion) => {
          for (let start = 0; start < scene.inputs.length; start += batchFrames) {
            const inputs = scene.inputs.slice(start, start + batchFrames);
            const { masks } = await session.segment({
              frames: inputs,
              size: plan,
              feeds: { [manifest.classEmbeddings.input]: classFeed, ...feeds },
              classOf: identity,
            });
            for (const [i, mask] of masks.entries()) confusion.add(truthMasks[start + i]!, unletterbox.apply(mask, upscaled));
          }
        };
        // Scored per scene, then pooled into the cell: the per-scene figures show how far one
        // street layout moves a cell of a few scenes.
        const sceneMiou: Partial<Record<EvalMethod, number>> = {};
        for (const [method, feeds] of feedsBy) {
          if (!methods.has(method)) continue;
          let confusion = entry.confusion.get(method);
          if (!confusion) entry.confusion.set(method, (confusion = new Confusion(manifest.classes.length)));
          const sceneConfusion = new Confusion(manifest.classes.length);
          await score(feeds, sceneConfusion);
          confusion.addCounts(sceneConfusion);
          sceneMiou[method] = round4(sceneConfusion.miou());
        }
        if (sceneMiou.base !== undefined && sceneMiou.weightedCat !== undefined)
          entry.cell.scenesBelowBase = (entry.cell.scenesBelowBase ?? 0) + (sceneMiou.weightedCat < sceneMiou.base ? 1 : 0);
        logger.debug({ size: sizeKey, scene: scene.indices[0], condition: truth.label, miou: sceneMiou }, 'eval scene scored');
        if (truth.composition && methods.has('oracleSingles')) {
          for (const e of entries) {
            let confusion = entry.singles.get(e.name);
            if (!confusion) entry.singles.set(e.name, (confusion = new Confusion(manifest.classes.length)));
            await score(merged([{ name: e.name, weight: 1 }], 'cat'), confusion);
          }
        }
        frames += scene.indices.length;
      }
      options.onVideo?.(vi + 1, options.videos.length);
    }
  } finally {
    await session.release();
    await embedder.close();
    await registry.close();
  }

  const out: EvalCell[] = [];
  for (const { cell, confusion, singles, mix } of cells.values()) {
    for (const [method, c] of confusion) cell.miou[method] = round4(c.miou());
    if (singles.size > 0) cell.miou.oracleSingles = round4(Math.max(...[...singles.values()].map((c) => c.miou())));
    cell.mix = Object.fromEntries([...mix].map(([name, w]) => [name, round4(w / cell.scenes)]).sort((a, b) => Number(b[1]) - Number(a[1])));
    out.push(cell);
  }
  return {
    cells: out,
    retrieval: retrievalStats,
    settings: {
      model: `${manifest.name}@${manifest.version}`,
      retrieval,
      embeddingFrames: k,
      videos: options.videos.length,
      frames,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    },
  };
}

/**
 * Decodes a video as the producer does for a file (the sink decoding the source itself) and
 * groups the model inputs by detected scene.
 */
async function decodeScenes(
  ffmpeg: FfmpegRepository,
  file: string,
  probe: { width: number; height: number; fps: number; streamIndex?: number },
  plan: ModelInputPlan,
  cuts: { threshold: number; minSceneFrames: number },
): Promise<SceneFrames[]> {
  const detector = new SceneCutDetector(cuts);
  const scenes: SceneFrames[] = [];
  const inputs = new ModelInputFrames(plan, probe.width, probe.height, { sourceNeeded: false });
  for await (const frame of ffmpeg.decodeFrames(
    { kind: 'file', path: file },
    { fps: probe.fps, width: probe.width, height: probe.height, streamIndex: probe.streamIndex, ...inputs.decodeOptions },
  )) {
    if (detector.next(inputs.cutImage(frame.data))) scenes.push({ inputs: [], indices: [] });
    const scene = scenes[scenes.length - 1]!;
    scene.inputs.push(await inputs.input(frame.data));
    scene.indices.push(frame.index);
  }
  return scenes;
}

/** Synth class index → model class index by name (255: not scored). */
function classRemapByName(modelClasses: readonly string[]): (synthName: string) => number {
  return (name) => {
    const j = modelClasses.indexOf(name);
    return j >= 0 ? j : 255;
  };
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
