import { writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/cli/embedded-redis.js';
import { loadModelPackage, type ModelPackage } from '../../src/shared/model-manifest.js';
import { AdapterRegistry, addRuntimeAdapter, adapterRegistryKeys, removeAdapter, restorePackageAdapter } from '../../src/workers/adapters/adapter-registry.js';
import { encodeSafetensors } from '../../src/shared/adapters/safetensors.js';
import { listAdapters } from '../../src/shared/adapters/adapter-store.js';
import { writeFixtureAdapter, writeFixturePackage } from '../fixtures/adapters/adapter-fixtures.js';

describe('adapter registry', () => {
  let dir: string;
  let server: EmbeddedRedis;
  let redis: Redis;
  let subscriber: Redis;
  let pkg: ModelPackage;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-registry-'));
    server = await startEmbeddedRedis();
    redis = new Redis(server.url);
    subscriber = new Redis(server.url);
    await writeFixturePackage(path.join(dir, 'pkg'), {
      embeddingSize: 3,
      adapters: [
        { name: 'fog', seed: 1, centroid: [1, 0, 0] },
        { name: 'night', seed: 2, centroid: [0, 1, 0] },
        { name: 'broken', seed: 3, centroid: [0, 0, 1] },
      ],
    });
    // break one package adapter: NaN in a weight
    await writeFile(
      path.join(dir, 'pkg', 'adapters', 'broken', 'adapter_model.safetensors'),
      encodeSafetensors({ 'base_model.model.head.proj.lora_A.weight': { shape: [4, 20], data: new Float32Array(80).fill(Number.NaN) } }),
    );
    pkg = await loadModelPackage(path.join(dir, 'pkg'));
  });

  afterAll(async () => {
    redis?.disconnect();
    subscriber?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the package adapters, refusing a bad one with a clear error while the others keep serving', async () => {
    const registry = await AdapterRegistry.open({ pkg });
    expect(registry.entries().map((e) => e.name)).toEqual(['fog', 'night']);
    expect(registry.problems()).toEqual([
      {
        name: 'broken',
        source: 'package',
        error: expect.stringMatching(
          /^E_ADAPTER_FILE: .*broken\/adapter_model\.safetensors: tensor "base_model\.model\.head\.proj\.lora_A\.weight": element 0 is NaN/,
        ),
      },
    ]);
    expect(registry.get('fog')!.centroids[0]).toEqual(Float32Array.from([1, 0, 0]));
    expect(registry.candidates()).toHaveLength(2);
  });

  it('picks up run-time additions and removals in running workers without a restart', async () => {
    await redis.flushall();
    const pollOnly = await AdapterRegistry.open({ pkg, redis, refreshIntervalMs: 0 });
    const second = redis.duplicate();
    const subscribed = await AdapterRegistry.open({ pkg, redis: second, subscriber, refreshIntervalMs: 60_000 });
    let changes = 0;
    subscribed.onChange(() => changes++);

    const snow = await writeFixtureAdapter(path.join(dir, 'snow'), { seed: 9 });
    const added = await addRuntimeAdapter(redis, pkg, { dir: snow.dir, centroids: [[0.5, 0.5, 0]], condition: 'snow' });
    expect(added).toMatchObject({ name: 'snow', replaced: false });
    expect(added.version).toMatch(/^[0-9a-f]{16}$/);

    expect(await pollOnly.maybeRefresh()).toBe(true);
    expect(pollOnly.entries().map((e) => `${e.name}:${e.source}`)).toEqual(['fog:package', 'night:package', 'snow:runtime']);
    await expect.poll(() => subscribed.entries().map((e) => e.name)).toEqual(['fog', 'night', 'snow']);
    expect(changes).toBeGreaterThanOrEqual(1);
    expect(await pollOnly.maybeRefresh()).toBe(false); // version unchanged

    // removal of a package adapter (tombstone) and of a run-time adapter
    expect(await removeAdapter(redis, pkg, 'fog')).toBe(true);
    expect(await removeAdapter(redis, pkg, 'snow')).toBe(true);
    expect(await removeAdapter(redis, pkg, 'snow')).toBe(false);
    expect(await redis.exists(adapterRegistryKeys.files('snow', added.version))).toBe(0);
    await pollOnly.maybeRefresh();
    expect(pollOnly.entries().map((e) => e.name)).toEqual(['night']);
    await expect.poll(() => subscribed.entries().map((e) => e.name)).toEqual(['night']);
    expect(await restorePackageAdapter(redis, 'fog')).toBe(true);
    await pollOnly.maybeRefresh();
    expect(pollOnly.entries().map((e) => e.name)).toEqual(['fog', 'night']);
    await subscribed.close();
    await subscribed.close();
    second.disconnect();
  });

  it('refuses a bad adapter at add time and writes nothing', async () => {
    await redis.flushall();
    const bad = await writeFixtureAdapter(path.join(dir, 'bad'), {
      override: { 'base_model.model.enc.attn0.qkv.lora_B.weight': { shape: [47, 4], data: new Float32Array(188) } },
    });
    await expect(addRuntimeAdapter(redis, pkg, { dir: bad.dir, centroids: [[1, 1, 1]] })).rejects.toMatchObject({
      code: 'E_ADAPTER_SHAPE',
      message: expect.stringContaining('tensor "base_model.model.enc.attn0.qkv.lora_B.weight": expected [48, 4] (r from lora_A), got [47, 4]'),
    });
    const good = await writeFixtureAdapter(path.join(dir, 'good'), { seed: 5 });
    await expect(addRuntimeAdapter(redis, pkg, { dir: good.dir, centroids: [[1, 1]] })).rejects.toMatchObject({
      code: 'E_ADAPTER_SHAPE',
      message: expect.stringMatching(/centroid has 2 values, the embedding has 3/),
    });
    await expect(addRuntimeAdapter(redis, pkg, { dir: good.dir, name: 'bad name!', centroids: [[1, 1, 1]] })).rejects.toThrow(/must be 1-64 letters/);
    expect(await redis.hlen(adapterRegistryKeys.registry)).toBe(0);
  });

  it('skips a run-time record whose files went missing, serving the rest', async () => {
    await redis.flushall();
    const rain = await writeFixtureAdapter(path.join(dir, 'rain'), { seed: 11 });
    const dusk = await writeFixtureAdapter(path.join(dir, 'dusk'), { seed: 12 });
    const r1 = await addRuntimeAdapter(redis, pkg, { dir: rain.dir, centroids: [[0, 0, 1]] });
    await addRuntimeAdapter(redis, pkg, { dir: dusk.dir, centroids: [[0, 1, 1]] });
    await redis.del(adapterRegistryKeys.files('rain', r1.version));
    const registry = await AdapterRegistry.open({ pkg, redis });
    expect(registry.entries().map((e) => e.name)).toEqual(['dusk', 'fog', 'night']);
    expect(registry.problems().find((p) => p.name === 'rain')!.error).toMatch(/files are missing/);
    // re-adding replaces the record
    expect((await addRuntimeAdapter(redis, pkg, { dir: rain.dir, centroids: [[0, 0, 1]] })).replaced).toBe(true);
    await registry.refresh();
    expect(registry.entries().map((e) => e.name)).toEqual(['dusk', 'fog', 'night', 'rain']);
  });

  it('lists the served adapters from the index and Redis without reading weights (GET /v1/adapters)', async () => {
    await redis.flushall();
    await addRuntimeAdapter(redis, pkg, { dir: path.join(dir, 'pkg', 'adapters', 'fog'), name: 'rain', centroids: [[0, 0, 1]], condition: 'rain' });
    await removeAdapter(redis, pkg, 'night');
    await redis.hset(adapterRegistryKeys.registry, 'mangled', '{not json');
    const listed = await listAdapters(redis, pkg);
    // 'broken' is listed: its weights are not read here (workers refuse it when they load it).
    expect(listed.adapters.map((a) => [a.name, a.source, a.centroids])).toEqual([
      ['broken', 'package', 1],
      ['fog', 'package', 1],
      ['rain', 'runtime', 1],
    ]);
    expect(listed.adapters.find((a) => a.name === 'rain')).toMatchObject({ condition: 'rain', version: expect.any(String) });
    expect(listed.problems).toEqual([{ name: 'mangled', source: 'runtime', error: expect.stringMatching(/^E_ADAPTER_FILE: /) }]);
    // A worker's registry refuses the unreadable record the same way and keeps serving the rest.
    const registry = await AdapterRegistry.open({ pkg, redis });
    expect(registry.problems().filter((p) => p.source === 'runtime')).toEqual([
      { name: 'mangled', source: 'runtime', error: expect.stringMatching(/^E_ADAPTER_FILE: /) },
    ]);
    expect(registry.entries().map((e) => e.name)).toEqual(['fog', 'rain']);
    await registry.close();
    await redis.flushall();
  });

  it('keeps one consistent record and one set of files when writers race on the same name', async () => {
    await redis.flushall();
    const dirs = await Promise.all([21, 22, 23, 24].map((seed) => writeFixtureAdapter(path.join(dir, `race-${seed}`), { seed })));
    const results = await Promise.all(dirs.map((d) => addRuntimeAdapter(redis, pkg, { dir: d.dir, name: 'race', centroids: [[0, 0, 1]] })));
    expect(results.filter((r) => !r.replaced)).toHaveLength(1);
    const record = JSON.parse((await redis.hget(adapterRegistryKeys.registry, 'race'))!) as { version: string };
    expect(await redis.keys(adapterRegistryKeys.files('race', '*'))).toEqual([adapterRegistryKeys.files('race', record.version)]);
    const removals = await Promise.all([1, 2, 3].map(() => removeAdapter(redis, pkg, 'race')));
    expect(removals.filter(Boolean)).toHaveLength(1);
    expect(await redis.keys(adapterRegistryKeys.files('race', '*'))).toEqual([]);
    expect(await restorePackageAdapter(redis, 'race')).toBe(false);
    await redis.flushall();
  });
});
