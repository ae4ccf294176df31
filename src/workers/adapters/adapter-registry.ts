import path from 'node:path';
import type { RedisConnection } from '../../shared/redis.js';
import { ErrorCode, errorLine, ModelError } from '../../shared/errors/index.js';
import type { Logger } from '../../shared/logger.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { ADAPTER_REGISTRY_KEYS } from '../../shared/redis-keys.js';
import { parseAdapter, readAdapterFiles, type LoadedAdapter } from '../../shared/adapters/adapter-loader.js';
import { embeddingSize, readAdapterIndex, readRuntimeFiles, parseRuntimeRecord, toCentroids, type AdapterIndex } from '../../shared/adapters/adapter-store.js';
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

// Storage (index, run-time records, admin writes) lives in src/shared, where the API and the CLI use it too.
export {
  addRuntimeAdapter,
  adapterIndexSchema,
  readAdapterIndex,
  removeAdapter,
  restorePackageAdapter,
  type AddAdapterInput,
  type AdapterIndex,
  type RuntimeAdapterRecord,
} from '../../shared/adapters/adapter-store.js';

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
  redis?: RedisConnection;
  /**
   * A dedicated connection to subscribe to change announcements with, so changes apply at
   * once; without it, `maybeRefresh()` polls the version counter.
   */
  subscriber?: RedisConnection;
  logger?: Logger;
  /** Least time between two version checks in `maybeRefresh()`. @defaultValue 1000 */
  refreshIntervalMs?: number;
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
        const parsed = parseRuntimeRecord(text);
        if (!parsed.success)
          throw new ModelError(
            ErrorCode.ADAPTER_FILE,
            `run-time adapter "${name}": its record in Redis is not readable (${parsed.error.issues[0]?.message ?? 'invalid'})`,
          );
        const record = parsed.data;
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
