import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ErrorCode, errorLine, ModelError } from '../../shared/errors/index.js';
import type { Logger } from '../../shared/logger.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { ADAPTER_REGISTRY_KEYS } from '../../shared/redis-keys.js';
import { parseAdapter, readAdapterFiles, type AdapterFiles, type LoadedAdapter } from './adapter-loader.js';
import { BASE_CANDIDATE, type RetrievalCandidate } from './retrieval.js';

/**
 * Every adapter a worker may retrieve: the model package's (adapters/index.json) plus those
 * added at run time (`streamseg adapters add`), which live in Redis so that every worker on
 * every machine sees them without a shared volume or a restart. Run-time records override
 * package adapters of the same name; a removal of a package adapter is a tombstone record.
 * Each adapter is validated when loaded; a bad one is listed in `problems()` and skipped
 * while the others keep serving.
 */

/** The run-time registry's Redis keys (defined in shared/redis-keys.ts). */
export const adapterRegistryKeys = ADAPTER_REGISTRY_KEYS;

const centroidList = z.array(z.array(z.number().finite()).min(1)).min(1);

/** `adapters/index.json` of a model package. */
export const adapterIndexSchema = z.object({
  embedding: z.object({ size: z.number().int().min(1), metric: z.enum(['cosine', 'l2']).default('cosine') }),
  adapters: z.array(
    z.object({
      name: z.string().min(1),
      /** Directory relative to the package's adapters dir. @defaultValue the name */
      path: z.string().min(1).optional(),
      condition: z.string().optional(),
      centroids: centroidList,
    }),
  ),
  /**
   * The base model's own domain (what it was trained on): retrieval ranks it with the adapters,
   * and a scene nearest to it runs the base model (see RetrievalCandidate.base).
   */
  base: z.object({ condition: z.string().optional(), centroids: centroidList }).optional(),
});
export type AdapterIndex = z.infer<typeof adapterIndexSchema>;

const runtimeRecordSchema = z.union([
  z.object({
    name: z.string().min(1),
    version: z.string().min(1),
    centroids: centroidList,
    condition: z.string().optional(),
    /** Directory it was added from (informational). */
    from: z.string().optional(),
    addedAt: z.number(),
  }),
  z.object({ name: z.string().min(1), removed: z.literal(true), removedAt: z.number() }),
]);
export type RuntimeAdapterRecord = z.infer<typeof runtimeRecordSchema>;

export interface AdapterEntry {
  name: string;
  condition?: string;
  centroids: Float32Array[];
  source: 'package' | 'runtime';
  adapter: LoadedAdapter;
}

export interface AdapterProblem {
  name: string;
  source: 'package' | 'runtime';
  /** `E_CODE: message`, naming the file and tensor where there is one. */
  error: string;
}

export interface AdapterRegistryOptions {
  pkg: ModelPackage;
  /** Where run-time additions live; without it only the package's adapters are served. */
  redis?: Redis;
  /**
   * A dedicated connection to subscribe to change announcements with, so changes apply at
   * once; without it, `maybeRefresh()` polls the version counter.
   */
  subscriber?: Redis;
  logger?: Logger;
  /** Least time between two version checks in `maybeRefresh()`. @defaultValue 1000 */
  refreshIntervalMs?: number;
}

function toCentroids(lists: number[][], size: number, where: string): Float32Array[] {
  for (const c of lists) {
    if (c.length !== size) throw new ModelError(ErrorCode.ADAPTER_SHAPE, `${where}: centroid has ${c.length} values, the embedding has ${size}`);
  }
  return lists.map((c) => Float32Array.from(c));
}

/** Embedding size the package's embedder produces (manifest), else the index's. */
function embeddingSize(pkg: ModelPackage, index?: AdapterIndex): number | undefined {
  return pkg.manifest.embedder?.size ?? index?.embedding.size;
}

export async function readAdapterIndex(pkg: ModelPackage): Promise<AdapterIndex | undefined> {
  const spec = pkg.manifest.adapters;
  if (!spec) return undefined;
  const file = path.join(pkg.dir, spec.index);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new ModelError(ErrorCode.MODEL_MANIFEST, `${file}: cannot read the adapter index (${(cause as Error).message})`, { cause });
  }
  const parsed = adapterIndexSchema.safeParse(json);
  if (!parsed.success) {
    throw new ModelError(ErrorCode.MODEL_MANIFEST, `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const size = pkg.manifest.embedder?.size;
  if (size !== undefined && parsed.data.embedding.size !== size) {
    throw new ModelError(ErrorCode.MODEL_MISMATCH, `${file}: embedding.size ${parsed.data.embedding.size} differs from the embedder's size ${size} in model.json`);
  }
  return parsed.data;
}

export class AdapterRegistry {
  private packageEntries = new Map<string, AdapterEntry>();
  private runtimeEntries = new Map<string, AdapterEntry>();
  private tombstones = new Set<string>();
  private packageProblems: AdapterProblem[] = [];
  private runtimeProblems: AdapterProblem[] = [];
  private seenVersion: string | null = null;
  private lastCheck = 0;
  private refreshing: Promise<boolean> | undefined;
  private listeners = new Set<() => void>();
  private readonly refreshIntervalMs: number;
  private closed: Promise<void> | undefined;
  /** The package's base-domain centroids (index `base`); empty when it has none. */
  private baseCentroids: Float32Array[] = [];

  private constructor(
    readonly pkg: ModelPackage,
    readonly index: AdapterIndex | undefined,
    private readonly options: AdapterRegistryOptions,
  ) {
    this.refreshIntervalMs = options.refreshIntervalMs ?? 1000;
    if (this.refreshIntervalMs < 0) throw new RangeError('refreshIntervalMs must be >= 0');
  }

  /** Loads and validates the package's adapters, then the run-time ones from Redis. */
  static async open(options: AdapterRegistryOptions): Promise<AdapterRegistry> {
    const index = await readAdapterIndex(options.pkg);
    const registry = new AdapterRegistry(options.pkg, index, options);
    await registry.loadPackage();
    if (options.redis) await registry.refresh(true);
    if (options.subscriber) {
      await options.subscriber.subscribe(adapterRegistryKeys.channel);
      options.subscriber.on('message', (channel: string) => {
        if (channel !== adapterRegistryKeys.channel) return;
        registry.refresh(true).catch((error: unknown) => options.logger?.warn({ err: errorLine(error) }, 'adapter registry refresh failed'));
      });
    }
    return registry;
  }

  /** Adapters currently served (run-time ones override package ones of the same name). */
  entries(): AdapterEntry[] {
    const merged = new Map<string, AdapterEntry>();
    for (const [name, entry] of this.packageEntries) if (!this.tombstones.has(name)) merged.set(name, entry);
    for (const [name, entry] of this.runtimeEntries) merged.set(name, entry);
    return [...merged.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  get(name: string): AdapterEntry | undefined {
    return this.entries().find((e) => e.name === name);
  }

  /** The adapters, plus the base domain when the package's index has one. */
  candidates(): RetrievalCandidate[] {
    const adapters: RetrievalCandidate[] = this.entries().map((e) => ({ name: e.name, centroids: e.centroids }));
    return this.baseCentroids.length > 0 ? [...adapters, { name: BASE_CANDIDATE, centroids: this.baseCentroids, base: true }] : adapters;
  }

  /** Adapters refused at load time, with the reason; they are not served. */
  problems(): AdapterProblem[] {
    return [...this.packageProblems, ...this.runtimeProblems];
  }

  /** Called after every change of the served set. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Checks the version counter at most every refreshIntervalMs; cheap to call per scene. */
  async maybeRefresh(): Promise<boolean> {
    if (!this.options.redis || Date.now() - this.lastCheck < this.refreshIntervalMs) return false;
    return this.refresh();
  }

  /** Reloads run-time adapters when the version counter moved (or always with `force`). */
  refresh(force = false): Promise<boolean> {
    this.refreshing ??= this.doRefresh(force).finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Unsubscribes; idempotent. The Redis connections stay the caller's to close. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.listeners.clear();
      if (this.options.subscriber && this.options.subscriber.status === 'ready') {
        await this.options.subscriber.unsubscribe(adapterRegistryKeys.channel).catch(() => undefined);
      }
    })();
    return this.closed;
  }

  private async loadPackage(): Promise<void> {
    if (!this.index || !this.pkg.manifest.adapters) return;
    const adaptersDir = path.join(this.pkg.dir, this.pkg.manifest.adapters.dir);
    const size = embeddingSize(this.pkg, this.index)!;
    if (this.index.base) this.baseCentroids = toCentroids(this.index.base.centroids, size, `${path.join(this.pkg.dir, this.pkg.manifest.adapters.index)} base`);
    const seen = new Set<string>();
    for (const item of this.index.adapters) {
      const dir = path.join(adaptersDir, item.path ?? item.name);
      try {
        if (seen.has(item.name)) throw new ModelError(ErrorCode.MODEL_MANIFEST, `${this.pkg.manifest.adapters.index}: adapter "${item.name}" is listed twice`);
        seen.add(item.name);
        const centroids = toCentroids(item.centroids, size, `${path.join(this.pkg.dir, this.pkg.manifest.adapters.index)} adapter "${item.name}"`);
        const adapter = parseAdapter(await readAdapterFiles(dir), this.pkg.manifest.lora.targets, item.name);
        this.packageEntries.set(item.name, { name: item.name, condition: item.condition, centroids, source: 'package', adapter });
      } catch (error) {
        this.packageProblems.push({ name: item.name, source: 'package', error: errorLine(error) });
        this.options.logger?.error({ adapter: item.name, err: errorLine(error) }, 'adapter refused; the others keep serving');
      }
    }
  }

  private async doRefresh(force: boolean): Promise<boolean> {
    const redis = this.options.redis;
    if (!redis) return false;
    this.lastCheck = Date.now();
    const version = await redis.get(adapterRegistryKeys.version);
    if (!force && version === this.seenVersion) return false;
    const raw = await redis.hgetall(adapterRegistryKeys.registry);
    const size = embeddingSize(this.pkg, this.index);
    const nextEntries = new Map<string, AdapterEntry>();
    const nextTombstones = new Set<string>();
    const problems: AdapterProblem[] = [];
    for (const [name, text] of Object.entries(raw)) {
      try {
        const record = runtimeRecordSchema.parse(JSON.parse(text));
        if ('removed' in record) {
          nextTombstones.add(name);
          continue;
        }
        const current = this.runtimeEntries.get(name);
        if (current && current.adapter.version === record.version) {
          nextEntries.set(name, current);
          continue;
        }
        const centroids = toCentroids(record.centroids, size ?? record.centroids[0]!.length, `run-time adapter "${name}"`);
        const files = await readRuntimeFiles(redis, name, record.version);
        const adapter = parseAdapter(files, this.pkg.manifest.lora.targets, name);
        nextEntries.set(name, { name, condition: record.condition, centroids, source: 'runtime', adapter });
      } catch (error) {
        problems.push({ name, source: 'runtime', error: errorLine(error) });
        this.options.logger?.error({ adapter: name, err: errorLine(error) }, 'run-time adapter refused; the others keep serving');
      }
    }
    this.runtimeEntries = nextEntries;
    this.tombstones = nextTombstones;
    this.runtimeProblems = problems;
    this.seenVersion = version;
    this.options.logger?.info({ version, adapters: this.entries().map((e) => e.name) }, 'adapter registry loaded');
    for (const listener of this.listeners) listener();
    return true;
  }
}

async function readRuntimeFiles(redis: Redis, name: string, version: string): Promise<AdapterFiles> {
  const key = adapterRegistryKeys.files(name, version);
  const [config, weights] = await redis.hmgetBuffer(key, 'config', 'weights');
  if (!config || !weights) throw new ModelError(ErrorCode.ADAPTER_FILE, `redis ${key}: the adapter's files are missing (removed while loading?)`);
  return { config, weights, source: `redis:${name}` };
}

export interface AddAdapterInput {
  /** A PEFT adapter directory (adapter_config.json + adapter_model.safetensors). */
  dir: string;
  /** @defaultValue the directory's base name */
  name?: string;
  /** Domain centroid(s) in the embedder's space. */
  centroids: number[][];
  condition?: string;
}

/**
 * Validates an adapter against the package and publishes it to every worker. A bad adapter is
 * refused (ModelError naming file and tensor) and nothing is written.
 */
export async function addRuntimeAdapter(redis: Redis, pkg: ModelPackage, input: AddAdapterInput): Promise<{ name: string; version: string; replaced: boolean }> {
  const name = input.name ?? path.basename(path.resolve(input.dir));
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new ModelError(ErrorCode.ADAPTER_FILE, `adapter name "${name}" must be 1-64 letters, digits, '.', '_' or '-' (use --name)`);
  }
  const files = await readAdapterFiles(input.dir);
  const adapter = parseAdapter(files, pkg.manifest.lora.targets, name);
  const index = await readAdapterIndex(pkg).catch(() => undefined);
  const size = embeddingSize(pkg, index);
  if (size !== undefined) toCentroids(input.centroids, size, `adapter "${name}"`);
  const record: RuntimeAdapterRecord = {
    name,
    version: adapter.version,
    centroids: input.centroids,
    ...(input.condition ? { condition: input.condition } : {}),
    from: path.resolve(input.dir),
    addedAt: Date.now(),
  };
  const previous = await redis.hget(adapterRegistryKeys.registry, name);
  const filesKey = adapterRegistryKeys.files(name, adapter.version);
  const tx = redis.multi().hset(filesKey, { config: files.config, weights: files.weights }).hset(adapterRegistryKeys.registry, name, JSON.stringify(record));
  const old = previous ? runtimeRecordSchema.safeParse(JSON.parse(previous)) : undefined;
  if (old?.success && !('removed' in old.data) && old.data.version !== adapter.version) tx.del(adapterRegistryKeys.files(name, old.data.version));
  const results = await tx.incr(adapterRegistryKeys.version).exec();
  const version = results?.at(-1)?.[1];
  await redis.publish(adapterRegistryKeys.channel, String(version));
  return { name, version: adapter.version, replaced: Boolean(old?.success && !('removed' in old.data)) };
}

/**
 * Stops serving an adapter everywhere: deletes a run-time adapter, or records a tombstone for
 * a package adapter. Returns false when no adapter of that name is served.
 */
export async function removeAdapter(redis: Redis, pkg: ModelPackage, name: string, options: { runtimeOnly?: boolean } = {}): Promise<boolean> {
  const index = await readAdapterIndex(pkg).catch(() => undefined);
  const inPackage = Boolean(index?.adapters.some((a) => a.name === name));
  const previous = await redis.hget(adapterRegistryKeys.registry, name);
  const old = previous ? runtimeRecordSchema.safeParse(JSON.parse(previous)) : undefined;
  const runtime = Boolean(old?.success && !('removed' in old.data));
  // runtimeOnly: a run-time adapter goes (a package adapter it shadowed is served again); package adapters stay.
  if (options.runtimeOnly && !runtime) return false;
  const served = runtime || (inPackage && !(old?.success && 'removed' in old.data));
  if (!served) return false;
  const tx = redis.multi();
  if (old?.success && !('removed' in old.data)) tx.del(adapterRegistryKeys.files(name, old.data.version));
  if (inPackage && !options.runtimeOnly) tx.hset(adapterRegistryKeys.registry, name, JSON.stringify({ name, removed: true, removedAt: Date.now() }));
  else tx.hdel(adapterRegistryKeys.registry, name);
  const results = await tx.incr(adapterRegistryKeys.version).exec();
  await redis.publish(adapterRegistryKeys.channel, String(results?.at(-1)?.[1]));
  return true;
}

/** Undoes the removal of a package adapter (drops its tombstone). */
export async function restorePackageAdapter(redis: Redis, name: string): Promise<boolean> {
  const previous = await redis.hget(adapterRegistryKeys.registry, name);
  if (!previous || !('removed' in JSON.parse(previous))) return false;
  await redis.multi().hdel(adapterRegistryKeys.registry, name).incr(adapterRegistryKeys.version).exec();
  await redis.publish(adapterRegistryKeys.channel, 'restore');
  return true;
}
