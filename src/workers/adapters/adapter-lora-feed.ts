import type { RedisConnection } from '../../shared/redis.js';
import type ort from 'onnxruntime-node';
import { ErrorCode, ModelError } from '../../shared/errors/index.js';
import type { FrameStore } from '../../shared/frame-store.js';
import type { Logger } from '../../shared/logger.js';
import type { LoraTarget, ModelPackage } from '../../shared/model-manifest.js';
import type { LoraFeedProvider } from '../segmentation/lora-feed.js';
import { adapterSelections } from './adapter-metrics.js';
import { AdapterRegistry } from './adapter-registry.js';
import { OnnxEmbedder, type EmbedderOptions } from './embedder.js';
import { MergedAdapterCache, zeroFeeds, type LoraFeeds } from './merged-adapter-cache.js';
import { resolveRetrievalOptions, retrieveAdapters, type RetrievalOverrides, type RetrievalResult } from './retrieval.js';
import { SceneEmbeddingService, type SceneEmbeddingOptions, type SceneRef } from './scene-embedding.js';

/** The worker's LoRA feed context (src/workers/segmentation/lora-feed.ts), plus per-job retrieval overrides. */
export interface AdapterFeedContext extends SceneRef {
  /** The job's `retrieval` overrides, applied over the provider's defaults. */
  retrieval?: RetrievalOverrides;
}

/** What the segmentation worker feeds and records per frame. */
export interface AdapterFeedResult {
  feeds: Record<string, ort.Tensor>;
  /** Adapters merged and their weights; empty = base model. */
  adapters: { name: string; weight: number }[];
  /** Whether the merge came from the cache; null when no adapter was used. */
  cacheHit: boolean | null;
  /** For report.json: how the mix was chosen. */
  details: {
    method: string;
    ranking: { name: string; distance: number }[];
    fallback: RetrievalResult['fallback'];
    embeddingSource: 'computed' | 'redis' | 'local';
    mergeMs: number;
  };
}

export interface AdapterLoraFeedDeps {
  targets: readonly LoraTarget[];
  registry: AdapterRegistry;
  embeddings: SceneEmbeddingService;
  cache: MergedAdapterCache;
  /** Retrieval defaults of this deployment (config), over the built-in ones. */
  retrieval?: RetrievalOverrides;
  logger?: Logger;
  /** Released by close(), in this order, when the provider owns them. */
  owned?: { close(): Promise<void> }[];
}

/**
 * Per scene: embedding (shared across workers) → adapter retrieval → merged adapter from the
 * cache (or merged now) → ready-to-feed LoRA inputs. When no adapter qualifies the base
 * model's (zero) inputs are fed.
 */
export class AdapterLoraFeedProvider implements LoraFeedProvider {
  private readonly baseFeeds: LoraFeeds;
  private closed: Promise<void> | undefined;

  constructor(private readonly deps: AdapterLoraFeedDeps) {
    this.baseFeeds = zeroFeeds(deps.targets);
    resolveRetrievalOptions(deps.retrieval); // reject impossible defaults at construction
  }

  async feedsFor(ctx: AdapterFeedContext): Promise<AdapterFeedResult> {
    const options = resolveRetrievalOptions(this.deps.retrieval, ctx.retrieval);
    await this.deps.registry
      .maybeRefresh()
      .catch((error: unknown) => this.deps.logger?.warn({ err: String(error) }, 'adapter registry refresh failed; serving the adapters known so far'));
    const candidates = this.deps.registry.candidates();
    if (candidates.length === 0) return this.base(options.method, [], 'none', 'local');

    const { embedding, source } = await this.deps.embeddings.get(ctx);
    const result = retrieveAdapters(embedding, candidates, options);
    if (result.selected.length === 0) return this.base(options.method, result.ranking, result.fallback, source);

    const inputs = result.selected.map((s) => ({ adapter: this.deps.registry.get(s.name)!.adapter, weight: s.weight }));
    const lookup = this.deps.cache.lookup({ adapters: inputs, method: options.method, svdRank: options.svdRank });
    adapterSelections.inc({ outcome: result.fallback === 'nearest' ? 'nearest' : 'merged' });
    if (!lookup.hit) {
      this.deps.logger?.debug({ videoId: ctx.videoId, scene: ctx.scene, key: lookup.key, mergeMs: lookup.mergeMs }, 'merged adapters');
    }
    return {
      feeds: lookup.feeds,
      adapters: result.selected.map((s) => ({ name: s.name, weight: s.weight })),
      cacheHit: lookup.hit,
      ...(options.guardMargin !== undefined ? { guard: { margin: options.guardMargin, baseFeeds: this.baseFeeds } } : {}),
      details: { method: options.method, ranking: result.ranking, fallback: result.fallback, embeddingSource: source, mergeMs: lookup.mergeMs },
    };
  }

  /** Closes what the provider owns (registry subscription, embedder session); idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.deps.registry.close();
      for (const part of this.deps.owned ?? []) await part.close();
    })();
    return this.closed;
  }

  private base(
    method: string,
    ranking: RetrievalResult['ranking'],
    fallback: RetrievalResult['fallback'],
    embeddingSource: AdapterFeedResult['details']['embeddingSource'],
  ): AdapterFeedResult {
    adapterSelections.inc({ outcome: 'base' });
    return { feeds: this.baseFeeds, adapters: [], cacheHit: null, details: { method, ranking, fallback, embeddingSource, mergeMs: 0 } };
  }
}

export interface CreateAdapterLoraFeedOptions {
  pkg: ModelPackage;
  redis: RedisConnection;
  frameStore: FrameStore;
  /** A dedicated connection for registry change announcements (optional; polling otherwise). */
  subscriber?: RedisConnection;
  embedder?: EmbedderOptions;
  sceneEmbedding?: SceneEmbeddingOptions;
  /** Byte budget of the merged-adapter cache. @defaultValue 64 MiB */
  cacheBytes?: number;
  retrieval?: RetrievalOverrides;
  logger?: Logger;
}

/** True when the package ships what retrieval needs: an embedder and an adapter index. */
export function packageHasAdapters(pkg: ModelPackage): boolean {
  return Boolean(pkg.manifest.embedder && pkg.manifest.adapters);
}

/** Builds the provider with its parts (registry, ONNX embedder, scene embeddings, cache). */
export async function createAdapterLoraFeedProvider(options: CreateAdapterLoraFeedOptions): Promise<AdapterLoraFeedProvider> {
  const { pkg } = options;
  if (!packageHasAdapters(pkg)) {
    throw new ModelError(
      ErrorCode.MODEL_MANIFEST,
      `${pkg.dir}/model.json has no "embedder" or no "adapters": per-scene adapters need both (use the base feeds instead)`,
    );
  }
  const logger = options.logger?.child({ part: 'adapters' });
  const registry = await AdapterRegistry.open({ pkg, redis: options.redis, subscriber: options.subscriber, logger });
  const embedder = await OnnxEmbedder.create(pkg, { ...options.embedder, logger });
  const embeddings = new SceneEmbeddingService(options.redis, options.frameStore, embedder, { ...options.sceneEmbedding, logger });
  const cache = new MergedAdapterCache(pkg.manifest.lora.targets, { maxBytes: options.cacheBytes });
  return new AdapterLoraFeedProvider({
    targets: pkg.manifest.lora.targets,
    registry,
    embeddings,
    cache,
    retrieval: options.retrieval,
    logger,
    owned: [embedder],
  });
}
