import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RedisConnection } from '../redis.js';
import { z } from 'zod';
import { ErrorCode, errorLine, ModelError } from '../errors/index.js';
import type { ModelPackage } from '../model-manifest.js';
import { ADAPTER_REGISTRY_KEYS as adapterRegistryKeys } from '../redis-keys.js';
import { parseAdapter, readAdapterFiles, type AdapterFiles } from './adapter-loader.js';

/**
 * Where adapters are stored, for every process: the model package's index (adapters/index.json)
 * and the run-time records in Redis (`streamseg adapters add`, POST /v1/adapters). Workers load
 * the weights from here (AdapterRegistry, src/workers/adapters); the API and the CLI write and
 * list through these functions without loading any weights.
 */

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

export const runtimeRecordSchema = z.union([
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

/** A run-time record from its JSON text; text that is not JSON fails like a record of the wrong shape. */
export function parseRuntimeRecord(text: string): ReturnType<typeof runtimeRecordSchema.safeParse> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return runtimeRecordSchema.safeParse(json);
}

export function toCentroids(lists: number[][], size: number, where: string): Float32Array[] {
  for (const c of lists) {
    if (c.length !== size) throw new ModelError(ErrorCode.ADAPTER_SHAPE, `${where}: centroid has ${c.length} values, the embedding has ${size}`);
  }
  return lists.map((c) => Float32Array.from(c));
}

/** Embedding size the package's embedder produces (manifest), else the index's. */
export function embeddingSize(pkg: ModelPackage, index?: AdapterIndex): number | undefined {
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
    throw new ModelError(
      ErrorCode.MODEL_MISMATCH,
      `${file}: embedding.size ${parsed.data.embedding.size} differs from the embedder's size ${size} in model.json`,
    );
  }
  return parsed.data;
}

export async function readRuntimeFiles(redis: RedisConnection, name: string, version: string): Promise<AdapterFiles> {
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

// Admin writes read the current record and write the new one in one step (Lua), so two writers
// cannot interleave between the read and the write (the API shares one connection between
// requests, so WATCH/MULTI would not isolate them). A record is run-time when it has a string
// version and no `removed`; ARGV's files prefix + version is the key of its files.
const RECORD_OF = `
local function recordOf(text)
  if not text then return nil end
  local ok, record = pcall(cjson.decode, text)
  if ok and type(record) == 'table' then return record end
  return nil
end
local function isRuntime(record) return record ~= nil and record.removed ~= true and type(record.version) == 'string' end
`;

// KEYS: registry, version counter, new files key. ARGV: name, record JSON, config, weights, new version, files prefix.
// Returns { replaced (0|1), version counter }.
const ADD_ADAPTER = `${RECORD_OF}
local old = recordOf(redis.call('HGET', KEYS[1], ARGV[1]))
local replaced = 0
if isRuntime(old) then
  replaced = 1
  if old.version ~= ARGV[5] then redis.call('DEL', ARGV[6] .. old.version) end
end
redis.call('HSET', KEYS[3], 'config', ARGV[3], 'weights', ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return { replaced, redis.call('INCR', KEYS[2]) }
`;

// KEYS: registry, version counter. ARGV: name, in package (1|0), run-time only (1|0), tombstone JSON, files prefix.
// Returns the version counter, or 0 when nothing of that name is served (nothing written).
const REMOVE_ADAPTER = `${RECORD_OF}
local old = recordOf(redis.call('HGET', KEYS[1], ARGV[1]))
local runtime = isRuntime(old)
local tombstone = old ~= nil and old.removed == true
if ARGV[3] == '1' and not runtime then return 0 end
if not (runtime or (ARGV[2] == '1' and not tombstone)) then return 0 end
if runtime then redis.call('DEL', ARGV[5] .. old.version) end
if ARGV[2] == '1' and ARGV[3] ~= '1' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[4]) else redis.call('HDEL', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[2])
`;

// KEYS: registry, version counter. ARGV: name. Drops a tombstone; 0 when there is none.
const RESTORE_ADAPTER = `${RECORD_OF}
local old = recordOf(redis.call('HGET', KEYS[1], ARGV[1]))
if old == nil or old.removed ~= true then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('INCR', KEYS[2])
`;

/**
 * Validates an adapter against the package and publishes it to every worker. A bad adapter is
 * refused (ModelError naming file and tensor) and nothing is written.
 */
export async function addRuntimeAdapter(
  redis: RedisConnection,
  pkg: ModelPackage,
  input: AddAdapterInput,
): Promise<{ name: string; version: string; replaced: boolean }> {
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
  const [replaced, version] = (await redis.eval(
    ADD_ADAPTER,
    3,
    adapterRegistryKeys.registry,
    adapterRegistryKeys.version,
    adapterRegistryKeys.files(name, adapter.version),
    name,
    JSON.stringify(record),
    files.config,
    files.weights,
    adapter.version,
    adapterRegistryKeys.files(name, ''),
  )) as [number, number];
  await redis.publish(adapterRegistryKeys.channel, String(version));
  return { name, version: adapter.version, replaced: replaced === 1 };
}

/**
 * Stops serving an adapter everywhere: deletes a run-time adapter, or records a tombstone for
 * a package adapter. Returns false when no adapter of that name is served.
 */
export async function removeAdapter(redis: RedisConnection, pkg: ModelPackage, name: string, options: { runtimeOnly?: boolean } = {}): Promise<boolean> {
  const index = await readAdapterIndex(pkg).catch(() => undefined);
  const inPackage = Boolean(index?.adapters.some((a) => a.name === name));
  // runtimeOnly: a run-time adapter goes (a package adapter it shadowed is served again); package adapters stay.
  const version = (await redis.eval(
    REMOVE_ADAPTER,
    2,
    adapterRegistryKeys.registry,
    adapterRegistryKeys.version,
    name,
    inPackage ? '1' : '0',
    options.runtimeOnly ? '1' : '0',
    JSON.stringify({ name, removed: true, removedAt: Date.now() }),
    adapterRegistryKeys.files(name, ''),
  )) as number;
  if (version === 0) return false;
  await redis.publish(adapterRegistryKeys.channel, String(version));
  return true;
}

/** Undoes the removal of a package adapter (drops its tombstone). */
export async function restorePackageAdapter(redis: RedisConnection, name: string): Promise<boolean> {
  const version = (await redis.eval(RESTORE_ADAPTER, 2, adapterRegistryKeys.registry, adapterRegistryKeys.version, name)) as number;
  if (version === 0) return false;
  await redis.publish(adapterRegistryKeys.channel, 'restore');
  return true;
}

/** An adapter as listed (GET /v1/adapters, `streamseg adapters list`): what the index and Redis say, no weights. */
export interface ListedAdapter {
  name: string;
  source: 'package' | 'runtime';
  condition: string | null;
  /** Content hash of the run-time adapter's files; null for package adapters (their files are not read). */
  version: string | null;
  centroids: number;
}

/**
 * The adapters the workers serve, from the package's index and the run-time records in Redis,
 * without reading any weights: run-time records override package adapters of the same name,
 * tombstones hide them. Records that cannot be read are listed as problems. Whether each
 * adapter's weights fit the model is checked when it is added (and by every worker that loads it).
 */
export async function listAdapters(
  redis: RedisConnection,
  pkg: ModelPackage,
): Promise<{ adapters: ListedAdapter[]; problems: { name: string; source: 'package' | 'runtime'; error: string }[] }> {
  const problems: { name: string; source: 'package' | 'runtime'; error: string }[] = [];
  const listed = new Map<string, ListedAdapter>();
  const index = await readAdapterIndex(pkg).catch((error: unknown) => {
    problems.push({ name: 'index', source: 'package', error: errorLine(error) });
    return undefined;
  });
  for (const item of index?.adapters ?? []) {
    listed.set(item.name, { name: item.name, source: 'package', condition: item.condition ?? null, version: null, centroids: item.centroids.length });
  }
  for (const [name, text] of Object.entries(await redis.hgetall(adapterRegistryKeys.registry))) {
    const record = parseRuntimeRecord(text);
    if (!record.success) {
      problems.push({
        name,
        source: 'runtime',
        error: `${ErrorCode.ADAPTER_FILE}: the run-time record in Redis is not readable (${record.error.issues[0]?.message ?? 'invalid'})`,
      });
      continue;
    }
    if ('removed' in record.data) listed.delete(name);
    else
      listed.set(name, {
        name,
        source: 'runtime',
        condition: record.data.condition ?? null,
        version: record.data.version,
        centroids: record.data.centroids.length,
      });
  }
  return { adapters: [...listed.values()].sort((a, b) => (a.name < b.name ? -1 : 1)), problems };
}
