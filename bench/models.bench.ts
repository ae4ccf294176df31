/**
 * Larger models next to the default one (issue 13, point 3): in one process run, for
 * models/default and for torchvision's LRASPP-MobileNetV3-Large and DeepLabV3-MobileNetV3-Large
 * (num_classes=8, seeded random weights with recalibrated BatchNorm statistics, exported to
 * ONNX by bench/export_torchvision.py and imported with `streamseg model import`), it prints
 * side by side:
 *   - raw ORT: bare `session.run` of full batches at the model input the producer plans for
 *     the video, with the worker's session options and the LoRA feeds of the pipeline's largest
 *     scene that ran with adapters (a cached merged adapter, as the worker feeds it): ms and
 *     CPU ms per frame;
 *   - pipeline: producer + segmentation worker + sink in this process on a private
 *     redis-server (as `streamseg run --model DIR` does), with retrieval, merging and the
 *     merged-adapter cache: frames/s first→last sink frame, and ms per frame;
 *   - pipeline/raw;
 *   - raw ORT with one intra-op thread, as each of the worker's sessions runs on 2 cores
 *     (STREAMSEG_INFERENCE_THREADS), and pipeline/(cores × that rate): against single-threaded
 *     sessions on every core, each as fast as alone (an upper bound ORT itself does not reach
 *     when they share memory bandwidth).
 * Each imported package gets two adapters trained for a few steps with `streamseg adapters
 * train` (self-training, no labels) on short fog and night clips, so the pipeline retrieves
 * and merges adapters per scene for every model. The bench checks that every frame was
 * written, and counts from masks.ndjson the frames segmented with a merged adapter and the
 * cache hits.
 *
 *   npm run bench:models -- [--models default,lraspp,deeplabv3] [--size 640x360] [--frames 96] [--fps 24] [--scenes 4] [--rounds 2]
 *                           [--fit-pixels 28672] [--train-steps 3]
 *
 * --fit-pixels is the imported models' input size in pixels (`model import --fit-pixels`; the
 * default is the import's, 224·128 at 640x360 as models/default); e.g. 230400 runs them at the
 * video's own 640x352.
 *
 * Needs /usr/bin/python3 with torch, torchvision and onnx (Debian's python3-torch,
 * python3-torchvision, python3-onnx) for the two imported models. Rounds of [pipeline, raw]
 * per model, models in turn, so that the machine's load moves all of them alike; the summary
 * is the median of the rounds. Settings come from the environment as for `streamseg run`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedRedis, type EmbeddedRedis } from '../src/cli/embedded-redis.js';
import { loadConfig, type StreamsegConfig } from '../src/shared/config.js';
import { createLogger } from '../src/shared/logger.js';
import { planModelInput } from '../src/shared/model-input-plan.js';
import { loadModelPackage, type ModelPackage } from '../src/shared/model-manifest.js';
import {
  BENCH_CACHE_DIR,
  benchVideo,
  loadWorkerNetwork,
  median,
  pipelineFeeds,
  probeVideo,
  run,
  runPipeline,
  type PipelineResult,
  type WorkerNetwork,
} from './pipeline-common.js';
import { runRaw, type RawResult } from './raw-ort.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'default,lraspp,deeplabv3' },
    size: { type: 'string', default: '640x360' },
    frames: { type: 'string', default: '96' },
    fps: { type: 'string', default: '24' },
    scenes: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '2' },
    'train-steps': { type: 'string', default: '3' },
    /** `model import --fit-pixels` for the imported models (default: the import's own, 224·128, the size models/default runs at). */
    'fit-pixels': { type: 'string', default: String(224 * 128) },
  },
});
const PYTHON = '/usr/bin/python3';
const CLASSES = 'sky,road,sidewalk,building,vegetation,vehicle,person,pole';
const IMPORTED = ['lraspp', 'deeplabv3'] as const;
const ADAPTER_CONDITIONS = ['fog', 'night'] as const;
const MAIN = path.resolve('src/cli/main.ts');

const models = values.models.split(',').map((m) => m.trim());
for (const m of models) {
  if (m !== 'default' && !(IMPORTED as readonly string[]).includes(m)) throw new Error(`--models: unknown model ${m} (default, ${IMPORTED.join(', ')})`);
}
const tmp = await mkdtemp(path.join(os.tmpdir(), 'streamseg-bench-models-'));
const logLevel = process.env.LOG_LEVEL ?? 'warn';
const logger = createLogger(logLevel);

/** `streamseg ARGS` as a child process (as a user runs it); rejects with its stderr when it fails. */
async function streamseg(args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'silent', OMP_WAIT_POLICY: 'PASSIVE' };
  delete env.REDIS_URL; // adapters train: no publishing, the package index is enough
  const { stdout } = await run(process.execPath, ['--import', 'tsx', MAIN, ...args], { env, maxBuffer: 64 * 2 ** 20 });
  return stdout;
}

/** A short single-condition clip an adapter is trained on, rendered once into the bench cache. */
async function adapterClip(condition: string): Promise<string> {
  const file = path.join(BENCH_CACHE_DIR, `adapter-${condition}-320x180-24f-7.mp4`);
  if (!existsSync(file)) await streamseg(['synth', '--out', file, '--size', '320x180', '--frames', '24', '--scene-conditions', condition, '--seed', '7']);
  return file;
}

/**
 * Export (seeded random weights), `streamseg model import`, and one adapter per condition with
 * `streamseg adapters train` (self-training, a few steps): the user's path of
 * docs/BRING-YOUR-OWN-MODEL.md. Returns the package directory and what each step took.
 */
async function importedPackage(arch: (typeof IMPORTED)[number]): Promise<{ dir: string; note: string }> {
  const onnxFile = path.join(tmp, `${arch}.onnx`);
  const dir = path.join(tmp, `pkg-${arch}`);
  let started = performance.now();
  const exported = spawnSync(PYTHON, ['bench/export_torchvision.py', arch, onnxFile, '--seed', '0'], {
    encoding: 'utf8',
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
  });
  if (exported.status !== 0) throw new Error(`export of ${arch} failed (needs ${PYTHON} with torch, torchvision, onnx): ${exported.stderr.trim()}`);
  const exportS = (performance.now() - started) / 1000;
  started = performance.now();
  const report = JSON.parse(
    (
      await streamseg([
        'model',
        'import',
        onnxFile,
        '--classes',
        CLASSES,
        '--out',
        dir,
        '--fit-pixels',
        values['fit-pixels'],
        '--threads',
        String(os.cpus().length),
        '--json',
      ])
    ).trim(),
  ) as { parity: { rank0MaxAbs: number; randomLoraVsDenseMaxAbs: number } };
  const importS = (performance.now() - started) / 1000;
  started = performance.now();
  for (const condition of ADAPTER_CONDITIONS) {
    // prettier-ignore
    await streamseg(['adapters', 'train', '--model', dir, '--from', await adapterClip(condition), '--name', `${condition}-cam`, '--condition', condition,
      '--steps', values['train-steps'], '--batch', '2', '--max-frames', '8', '--threads', String(os.cpus().length), '--json']);
  }
  const trainS = (performance.now() - started) / 1000;
  return {
    dir,
    note:
      `export ${exportS.toFixed(1)} s, import ${importS.toFixed(1)} s (rank-0 parity ${report.parity.rank0MaxAbs.toExponential(1)}, ` +
      `random LoRA vs dense ${report.parity.randomLoraVsDenseMaxAbs.toExponential(1)}), ${ADAPTER_CONDITIONS.length} adapters × ${values['train-steps']} steps ${trainS.toFixed(1)} s`,
  };
}

interface Retrieval {
  /** Frames segmented with a merge of 1+ adapters, and of 2+. */
  adapted: number;
  merged: number;
  cacheHits: number;
  cacheMisses: number;
  lines: number;
}

/** What masks.ndjson says the worker fed each frame: adapters (retrieval, merging) and whether the merge came from the cache. */
async function retrieval(outDir: string): Promise<Retrieval> {
  const lines = (await readFile(path.join(outDir, 'masks.ndjson'), 'utf8')).split('\n').filter((l) => l.length > 0);
  const r: Retrieval = { adapted: 0, merged: 0, cacheHits: 0, cacheMisses: 0, lines: lines.length };
  for (const line of lines) {
    const { adapters, cacheHit } = JSON.parse(line) as { adapters: unknown[]; cacheHit: boolean | null };
    if (adapters.length > 0) r.adapted++;
    if (adapters.length > 1) r.merged++;
    if (cacheHit === true) r.cacheHits++;
    if (cacheHit === false) r.cacheMisses++;
  }
  return r;
}

interface Model {
  name: string;
  config: StreamsegConfig;
  pkg: ModelPackage;
  /** The network as the worker runs it, with ORT's threads and with one intra-op thread. */
  network: WorkerNetwork;
  size: { width: number; height: number };
  note: string;
}

interface Sample {
  pipeline: PipelineResult;
  raw: RawResult;
  rawOneThread: RawResult;
  retrieval: Retrieval;
  lora: string;
  load: number;
}

const video = await benchVideo({ source: 'synth', size: values.size, frames: values.frames, fps: values.fps, scenes: values.scenes, seed: values.seed });
let redis: EmbeddedRedis | undefined;
const loaded: Model[] = [];
try {
  const probe = await probeVideo(video);
  console.log(`video ${path.basename(video)}: ${probe.line} (width,height,rate,frames)`);
  for (const name of models) {
    const imported = name === 'default' ? undefined : await importedPackage(name as (typeof IMPORTED)[number]);
    const config = loadConfig({ logLevel, outDir: tmp, ...(imported ? { modelDir: imported.dir } : {}) });
    const pkg = await loadModelPackage(config.modelDir);
    // Raw ORT runs the network as the worker does (LoRA branches folded where the package allows).
    const network = await loadWorkerNetwork(pkg, config, logger);
    const size = planModelInput(pkg.manifest.input, probe.width, probe.height);
    loaded.push({ name, config, pkg, network, size, note: imported?.note ?? `${config.modelDir} as shipped` });
  }
  const { batchFrames, intraOpThreads, inferenceThreads, workerConcurrency } = loaded[0]!.config;
  const cores = os.cpus().length;
  console.log(
    `batch ${batchFrames}, intra-op threads ${intraOpThreads || 'auto'}, inference threads ${inferenceThreads}, worker concurrency ${workerConcurrency}, ${cores} cores, loadavg ${os.loadavg()[0]!.toFixed(2)}`,
  );
  for (const m of loaded) {
    const adapters = m.pkg.manifest.adapters
      ? (JSON.parse(await readFile(path.join(m.pkg.dir, m.pkg.manifest.adapters.dir, 'index.json'), 'utf8')) as { adapters: unknown[] }).adapters.length
      : 0;
    const onnxMB = (await readFile(m.pkg.modelPath)).length / 1e6;
    console.log(
      `model ${m.name.padEnd(10)} ${m.size.width}x${m.size.height}, ${onnxMB.toFixed(1)} MB ONNX, ${m.pkg.manifest.lora.targets.length} LoRA targets, ${adapters} adapters; ${m.note}`,
    );
  }

  redis = await startEmbeddedRedis();
  // Page every model in before anything is timed.
  for (const m of loaded) {
    const { feeds } = await pipelineFeeds(m.config, m.pkg, undefined);
    await runRaw(m.network.session, m.pkg, await m.network.feeds(feeds), {
      output: m.network.output,
      batchFrames,
      size: m.size,
      minBatches: 2,
      minSeconds: 0.5,
    });
  }
  const samples = new Map<string, Sample[]>(loaded.map((m) => [m.name, []]));
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const m of loaded) {
      const load = os.loadavg()[0]!;
      const outDir = path.join(tmp, `out-${m.name}-${r}`);
      const pipeline = await runPipeline({ config: m.config, logger }, video, redis.url, outDir);
      if (pipeline.frames !== probe.packets) throw new Error(`${m.name}: the pipeline wrote ${pipeline.frames} frames of ${probe.packets}`);
      const seen = await retrieval(outDir);
      if (seen.lines !== pipeline.frames) throw new Error(`${m.name}: masks.ndjson has ${seen.lines} lines for ${pipeline.frames} frames`);
      // Raw ORT is fed the merge of the largest scene that ran with adapters (the cost of an
      // adapter merged into the feeds), not the base model of a scene retrieval left unadapted.
      const adaptedScenes = { ...pipeline.report, scenes: pipeline.report.scenes.filter((sc) => sc.adapters.length > 0) };
      const lora = await pipelineFeeds(m.config, m.pkg, adaptedScenes);
      const raw = await runRaw(m.network.session, m.pkg, await m.network.feeds(lora.feeds), {
        output: m.network.output,
        batchFrames,
        size: m.size,
        minBatches: 6,
        minSeconds: 4,
      });
      const rawOneThread = await runRaw(m.network.oneThread, m.pkg, await m.network.feeds(lora.feeds), {
        output: m.network.output,
        batchFrames,
        size: m.size,
        minBatches: 4,
        minSeconds: 3,
      });
      samples.get(m.name)!.push({ pipeline, raw, rawOneThread, retrieval: seen, lora: lora.label, load });
    }
  }

  const ms = (fps: number) => (1000 / fps).toFixed(1);
  const header = `${'model'.padEnd(10)} ${'input'.padEnd(8)} ${'raw ORT ms/frame'.padStart(16)} ${'CPU'.padStart(6)} ${'pipeline frames/s'.padStart(17)} ${'ms/frame'.padStart(9)} ${'CPU'.padStart(6)} ${'pipeline/raw'.padStart(12)}`;
  for (let r = 0; r < Number(values.rounds); r++) {
    console.log('');
    console.log(`round ${r + 1}`);
    console.log(header);
    for (const m of loaded) {
      const { pipeline, raw, load } = samples.get(m.name)![r]!;
      const pipelineCpu = ((pipeline.cpu.self + pipeline.cpu.children) * 1000) / pipeline.frames;
      console.log(
        `${m.name.padEnd(10)} ${`${m.size.width}x${m.size.height}`.padEnd(8)} ${ms(raw.fps).padStart(16)} ${raw.cpuMsPerFrame.toFixed(1).padStart(6)} ` +
          `${pipeline.steadyFps.toFixed(2).padStart(17)} ${ms(pipeline.steadyFps).padStart(9)} ${pipelineCpu.toFixed(1).padStart(6)} ` +
          `${(pipeline.steadyFps / raw.fps).toFixed(2).padStart(12)}  (loadavg ${load.toFixed(2)})`,
      );
    }
  }
  console.log('');
  console.log("retrieval, merging and the cache in the pipeline runs (masks.ndjson), and raw ORT's feeds:");
  for (const m of loaded) {
    const s = samples.get(m.name)!;
    const last = s[s.length - 1]!;
    const scenes = last.pipeline.report.scenes.map((sc) => sc.adapters.map((a) => `${a.name} ${a.weight}`).join(' + ') || 'base').join('; ');
    const { adapted, merged, cacheHits, cacheMisses, lines } = last.retrieval;
    console.log(
      `  ${m.name.padEnd(10)} ${lines} frames written, ${adapted} with adapters (${merged} merging 2+), merged-adapter cache ${cacheHits} hits / ${cacheMisses} misses; ` +
        `scenes: ${scenes}; raw ORT fed the ${last.lora}`,
    );
  }
  console.log('');
  console.log(
    `medians of ${values.rounds} rounds (first→last sink frame for the pipeline; CPU = ms of CPU per frame, this process + ffmpeg for the pipeline):`,
  );
  console.log(header);
  const base = samples.get(loaded[0]!.name)!;
  const baseRawMs = median(base.map((x) => 1000 / x.raw.fps));
  for (const m of loaded) {
    const s = samples.get(m.name)!;
    const rawMs = median(s.map((x) => 1000 / x.raw.fps));
    const fps = median(s.map((x) => x.pipeline.steadyFps));
    const ratio = median(s.map((x) => x.pipeline.steadyFps / x.raw.fps));
    const rawCpu = median(s.map((x) => x.raw.cpuMsPerFrame));
    const pipelineCpu = median(s.map((x) => ((x.pipeline.cpu.self + x.pipeline.cpu.children) * 1000) / x.pipeline.frames));
    console.log(
      `${m.name.padEnd(10)} ${`${m.size.width}x${m.size.height}`.padEnd(8)} ${rawMs.toFixed(1).padStart(16)} ${rawCpu.toFixed(1).padStart(6)} ` +
        `${fps.toFixed(2).padStart(17)} ${(1000 / fps).toFixed(1).padStart(9)} ${pipelineCpu.toFixed(1).padStart(6)} ${ratio.toFixed(2).padStart(12)}` +
        (m === loaded[0] ? '' : `  (raw ${(rawMs / baseRawMs).toFixed(1)}× ${loaded[0]!.name}'s ms/frame)`),
    );
  }
  console.log('');
  console.log(`raw ORT with one intra-op thread (medians), and the pipeline against ${cores} such sessions side by side, each as fast as alone:`);
  for (const m of loaded) {
    const s = samples.get(m.name)!;
    const oneMs = median(s.map((x) => 1000 / x.rawOneThread.fps));
    const oneCpu = median(s.map((x) => x.rawOneThread.cpuMsPerFrame));
    const ratio = median(s.map((x) => x.pipeline.steadyFps / (cores * x.rawOneThread.fps)));
    console.log(
      `${m.name.padEnd(10)} one thread ${oneMs.toFixed(1)} ms/frame, ${oneCpu.toFixed(1)} ms CPU/frame; pipeline/(${cores} × one-thread raw) ${ratio.toFixed(2)}`,
    );
  }
} finally {
  for (const m of loaded) await m.network.release();
  await redis?.stop();
  await rm(tmp, { recursive: true, force: true });
}
