import ort from 'onnxruntime-node';
import type { LoraTarget } from '../../shared/model-manifest.js';
import type { RetrievalOverrides } from '../../shared/retrieval-options.js';

/** What the worker knows about a batch when it asks for LoRA inputs. */
export interface LoraFeedContext {
  videoId: string;
  scene: number;
  /** First frame of the scene: providers embed the scene from here, once per scene. */
  sceneStartFrame: number;
  frames: readonly { index: number; timestampMs: number }[];
  /** Size of the frames' model inputs in Redis (the embedder reads them). */
  input: { width: number; height: number };
  /** The job's retrieval overrides; providers without retrieval ignore them. */
  retrieval?: RetrievalOverrides;
}

export interface LoraFeedChoice {
  /** One tensor per `inputA`/`inputB` of every LoRA target of the manifest. */
  feeds: Record<string, ort.Tensor>;
  /** Adapters behind the feeds and their merge weights; empty = base model. */
  adapters: { name: string; weight: number }[];
  /** Whether a merged adapter came from a cache; null when no adapter was used. */
  cacheHit: boolean | null;
  /**
   * Set when adapters were retrieved and the video's retrieval options ask for the confidence
   * guard: the margin, and the base model's feeds to compare with.
   */
  guard?: { margin: number; baseFeeds: Record<string, ort.Tensor> };
}

/**
 * Chooses the LoRA inputs for a batch. The worker only feeds what it gets, so retrieval,
 * merging and caching stay behind this interface.
 */
export interface LoraFeedProvider {
  feedsFor(ctx: LoraFeedContext): Promise<LoraFeedChoice>;
}

/**
 * A target's LoRA inputs for "no adapter": rank-1 zero A and B. Rank 1 rather than 0 because
 * ORT's MatMul over an empty inner dimension does not reliably produce zeros (training/model.py).
 */
export function rankOneZeros(target: LoraTarget): Record<string, ort.Tensor> {
  return {
    [target.inputA]: new ort.Tensor('float32', new Float32Array(target.in), [1, target.in]),
    [target.inputB]: new ort.Tensor('float32', new Float32Array(target.out), [target.out, 1]),
  };
}

/** The base model's LoRA inputs: rank-1 zeros for every target. */
export function baseModelFeeds(targets: readonly LoraTarget[]): Record<string, ort.Tensor> {
  return Object.assign({}, ...targets.map(rankOneZeros)) as Record<string, ort.Tensor>;
}

/** The base model: rank-1 zero A and B for every target, created once. */
export class BaseModelLoraFeeds implements LoraFeedProvider {
  private readonly choice: LoraFeedChoice;

  constructor(targets: readonly LoraTarget[]) {
    this.choice = { feeds: baseModelFeeds(targets), adapters: [], cacheHit: null };
  }

  feedsFor(): Promise<LoraFeedChoice> {
    return Promise.resolve(this.choice);
  }
}
