/**
 * Cost of per-scene adapters next to the model's own work, on one model package:
 *   - feeding a cached merged adapter (cache hit) vs one frame's inference: ratio ≤ 1%;
 *   - a cache miss (merging top-k adapters) vs one frame's inference: ratio ≤ 1, per method;
 *   - embedder runs per scene when two workers segment a multi-scene video (must equal scenes).
 *
 *   npx tsx bench/adapters.bench.ts [--model models/default] [--threads 0] [--top-k 3]
 *
 * Without models/default, a random-weight package with the real architecture is built
 * (test/fixtures/adapters/make-package.py; needs python3-torch) — timings are real, masks are not.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import ort from 'onnxruntime-node';
import { startEmbeddedRedis } from '../src/cli/embedded-redis.js';
import { FrameStore } from '../src/shared/frame-store.js';
import { createLogger } from '../src/shared/logger.js';
import { metricsRegistry } from '../src/shared/metrics.js';
import { loadModelPackage } from '../src/shared/model-manifest.js';
import { createAdapterLoraFeedProvider } from '../src/workers/adapters/adapter-lora-feed.js';
import { AdapterRegistry } from '../src/workers/adapters/adapter-registry.js';
import { MergedAdapterCache, zeroFeeds, type LoraFeeds } from '../src/workers/adapters/merged-adapter-cache.js';
import type { MergeMethod } from '../src/workers/adapters/merge.js';
import { FoldedLoraFeeds } from '../src/workers/segmentation/folded-lora-feeds.js';
import { foldLoraBranches } from '../src/workers/segmentation/lora-fold.js';
import { OnnxSessionRepository } from '../src/workers/segmentation/onnx-session.repository.js';

const { values } = parseArgs({
  options: { model: { type: 'string' }, threads: { type: 'string', default: '0' }, 'top-k': { type: 'string', default: '3' } },
});
const threads = Number(values.threads);
const topK = Number(values['top-k']);
const logger = createLogger('warn');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

let tmp: string | undefined;
let modelDir = values.model ?? 'models/default';
if (!existsSync(path.join(modelDir, 'model.json'))) {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ss-bench-pkg-'));
  modelDir = path.join(tmp, 'pkg');
  const made = spawnSync('/usr/bin/python3', ['test/fixtures/adapters/make-package.py', modelDir], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`no model package and make-package.py failed: ${made.stderr}`);
  console.log(`(no models/default: random-weight package with the real architecture in ${modelDir})`);
}
const pkg = await loadModelPackage(modelDir);
const { manifest } = pkg;
const targets = manifest.lora.targets;
const registry = await AdapterRegistry.open({ pkg });
const adapters = registry.entries().slice(0, topK);
const weights = adapters.map((_, i) => (topK - i) / ((topK * (topK + 1)) / 2));
const request = (method: MergeMethod) => ({ adapters: adapters.map((e, i) => ({ adapter: e.adapter, weight: weights[i]! })), method });

// ---- one frame's inference (batch 1, merged adapter fed) --------------------------------
// On this thread (no worker-thread hand-off): this bench times ORT itself against the adapter feeds' cost.
const session = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: threads, logger, inThread: false });
const { width, height } = manifest.input;
const frames = [new Uint8Array(3 * width * height).map(() => Math.floor(Math.random() * 256))];
const classes = new ort.Tensor('float32', Float32Array.from(manifest.classes.flatMap((c) => c.embedding)), [
  manifest.classes.length,
  manifest.classEmbeddings.dim,
]);
const classOf = Uint8Array.from(manifest.classes.map((_, i) => i));
const fixed = { [manifest.classEmbeddings.input]: classes };
const segmentFrame = (lora: LoraFeeds) => session.segment({ frames, size: { width, height }, feeds: { ...fixed, ...lora }, classOf });
const warmCache = new MergedAdapterCache(targets);
const mergedFeeds = warmCache.lookup(request('cat')).feeds;
const base = zeroFeeds(targets);
for (let i = 0; i < 5; i++) await segmentFrame(mergedFeeds);
const inferMs: number[] = [];
const inferBaseMs: number[] = [];
for (let i = 0; i < 30; i++) {
  // The time inside ORT's run (the session also normalises the frame and takes the argmax).
  inferMs.push((await segmentFrame(mergedFeeds)).inferenceMs);
  inferBaseMs.push((await segmentFrame(base)).inferenceMs);
}
const frameMs = median(inferMs);

// ---- cache hit: look up the merged adapter and assemble the feeds -----------------------
const hitMs: number[] = [];
for (let i = 0; i < 2000; i++) {
  const t = performance.now();
  const { feeds, hit } = warmCache.lookup(request('cat'));
  const all = { ...fixed, ...feeds };
  hitMs.push(performance.now() - t);
  if (!hit || !all) throw new Error('expected a cache hit');
}

// ---- cache miss: merge per method, then folding the merge into the network's weights ------
// (what the worker does next with a merge it has not seen, when it runs the folded network)
const folding = foldLoraBranches(await readFile(pkg.modelPath), targets);
const missMs: Record<string, number> = {};
const foldMs: Record<string, number> = {};
for (const method of ['cat', 'linear', 'svd'] as const) {
  const times: number[] = [];
  const folds: number[] = [];
  for (let i = 0; i < 15; i++) {
    const cache = new MergedAdapterCache(targets);
    const t = performance.now();
    const { feeds } = cache.lookup(request(method));
    times.push(performance.now() - t);
    if ('folded' in folding) {
      // A fresh folder's first run sets ORT up; a worker's folder is warm, so time the second fold.
      const fold = await FoldedLoraFeeds.create(folding.folded);
      const copy = (tensor: ort.Tensor) => new ort.Tensor('float32', Float32Array.from(tensor.data as Float32Array), tensor.dims);
      await fold.convert(Object.fromEntries(Object.entries(feeds).map(([name, tensor]) => [name, copy(tensor)])));
      const f = performance.now();
      await fold.convert(feeds);
      folds.push(performance.now() - f);
      await fold.release();
    }
  }
  missMs[method] = median(times);
  if (folds.length > 0) foldMs[method] = median(folds);
}
await session.release();

// ---- embedder runs per scene: 2 workers, 3 scenes of 32 frames, batches of 8 -------------
const server = await startEmbeddedRedis();
const producer = new Redis(server.url);
const store = new FrameStore(producer, 600);
const scenes = 3;
const perScene = 32;
const frameBytes = Buffer.alloc(width * height * 3);
for (let s = 0; s < scenes; s++) {
  frameBytes.fill(40 + 70 * s);
  for (let i = 0; i < perScene; i++) await store.putFrame('bench', s * perScene + i, Buffer.alloc(1), frameBytes);
}
const workers = await Promise.all(
  [0, 1].map(async () => {
    const redis = new Redis(server.url, { maxRetriesPerRequest: null });
    return { redis, provider: await createAdapterLoraFeedProvider({ pkg, redis, frameStore: new FrameStore(redis, 600), logger }) };
  }),
);
const runsBefore = (await metricsRegistry.getSingleMetric('streamseg_embedder_runs_total')!.get()).values.reduce((a, v) => a + v.value, 0);
let batches = 0;
for (let s = 0; s < scenes; s++) {
  const jobs = [];
  for (let b = 0; b < perScene / 8; b++) {
    const frames = Array.from({ length: 8 }, (_, i) => ({ index: s * perScene + b * 8 + i, timestampMs: 0 }));
    const w = workers[b % 2]!; // batches of a scene alternate between the two workers, concurrently
    jobs.push(w.provider.feedsFor({ videoId: 'bench', scene: s, sceneStartFrame: s * perScene, input: { width, height }, frames }));
    batches++;
  }
  await Promise.all(jobs);
}
const runs = (await metricsRegistry.getSingleMetric('streamseg_embedder_runs_total')!.get()).values.reduce((a, v) => a + v.value, 0) - runsBefore;
for (const w of workers) {
  await w.provider.close();
  w.redis.disconnect();
}
producer.disconnect();
await server.stop();
await registry.close();
if (tmp) await rm(tmp, { recursive: true, force: true });

const rank = adapters.reduce((s, a) => s + a.adapter.r, 0);
console.log(
  `model ${manifest.name}@${manifest.version}, input ${width}x${height}, ${targets.length} LoRA targets, top-${adapters.length} (${adapters.map((a) => a.name).join(', ')}), cat rank ${rank}, ORT threads ${threads || 'auto'}, ${os.cpus().length} CPUs`,
);
console.log(
  `one frame's inference (batch 1):      ${frameMs.toFixed(2)} ms with the merged adapter fed (${median(inferBaseMs).toFixed(2)} ms with base zeros)`,
);
console.log(
  `feed a cached merged adapter (hit):   ${(median(hitMs) * 1000).toFixed(1)} µs  ratio ${((100 * median(hitMs)) / frameMs).toFixed(3)}% of a frame (target ≤ 1%)`,
);
for (const [method, ms] of Object.entries(missMs)) {
  const fold = foldMs[method];
  console.log(
    `cache miss, merge ${method.padEnd(6)}:           ${ms.toFixed(2)} ms  ratio ${(ms / frameMs).toFixed(3)} of a frame (target ≤ 1)` +
      (fold === undefined ? '' : `; + folding it into the weights ${fold.toFixed(2)} ms: ${((ms + fold) / frameMs).toFixed(3)} of a frame`),
  );
}
console.log(`embedder runs: ${runs} for ${scenes} scenes, ${scenes * perScene} frames, ${batches} batches on 2 workers (target: one per scene)`);
// The issue 16 figure on its own line (same numbers as the svd line above), for scripts to read.
console.log(`svd merge at top-${adapters.length} / one frame's inference = ${(missMs.svd! / frameMs).toFixed(3)} (target ≤ 1)`);
