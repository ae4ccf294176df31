import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { planModelInput, type ModelInputSpec } from '../shared/model-input-plan.js';
import type { Condition } from './conditions.js';
import { writeStillBatch } from './still-batch.js';
import type { StillWorkerData } from './still-worker.js';
import type { StillMeta, StillSpec } from './still.js';
import { SynthError } from './synth-error.js';
import { ErrorCode } from '../shared/errors/index.js';

export interface StillsOptions {
  dir: string;
  count: number;
  width: number;
  height: number;
  seed: number;
  /** Stills cycle through these, so every condition gets the same share. */
  conditions: readonly Condition[];
  /** Overrides each adverse condition's default intensity range. */
  intensity?: readonly [number, number];
  supersample?: number;
  /**
   * Render sizes to cycle through (each condition gets every size in turn); overrides
   * width/height. More than one needs `modelInput`, and all must map to the same plan size.
   */
  sizes?: readonly { width: number; height: number }[];
  /** Write each still as the model would receive it (see StillSpec.modelInput). */
  modelInput?: ModelInputSpec;
  /**
   * Worker threads; rendering is CPU-bound JavaScript, so threads are what buys
   * parallelism. 1 renders on the calling thread.
   * @defaultValue os.availableParallelism(), at most 8
   */
  workers?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface StillsSummary {
  count: number;
  seconds: number;
  stillsPerSecond: number;
  metas: StillMeta[];
}

/**
 * Writes a training set: `images/<id>.png`, `masks/<id>.png` and `meta.jsonl` (one
 * line per still, in id order). Each still is an independent random scene.
 */
export async function renderStills(opts: StillsOptions): Promise<StillsSummary> {
  if (opts.conditions.length === 0) throw new SynthError(ErrorCode.SYNTH_OPTION, '--conditions: give at least one condition');
  const started = performance.now();
  await mkdir(path.join(opts.dir, 'images'), { recursive: true });
  await mkdir(path.join(opts.dir, 'masks'), { recursive: true });
  const sizes = opts.sizes && opts.sizes.length > 0 ? opts.sizes : [{ width: opts.width, height: opts.height }];
  checkSizes(sizes, opts.modelInput);
  const specs: StillSpec[] = [];
  const nc = opts.conditions.length;
  for (let index = 0; index < opts.count; index++) {
    const size = sizes[Math.floor(index / nc) % sizes.length]!;
    specs.push({
      index,
      runSeed: opts.seed,
      condition: opts.conditions[index % nc]!,
      intensity: opts.intensity,
      width: size.width,
      height: size.height,
      supersample: opts.supersample,
      ...(opts.modelInput ? { modelInput: opts.modelInput } : {}),
    });
  }
  const metas: (StillMeta | undefined)[] = new Array(opts.count);
  let done = 0;
  const onDone = (meta: StillMeta): void => {
    metas[Number(meta.id)] = meta;
    done++;
    opts.onProgress?.(done, opts.count);
  };
  const workers = Math.max(1, Math.min(opts.workers ?? Math.min(8, os.availableParallelism()), Math.ceil(opts.count / 8)));
  if (workers <= 1) await writeStillBatch(opts.dir, specs, onDone);
  else await runWorkers(opts.dir, specs, workers, onDone);

  const lines = metas.map((m) => JSON.stringify(m)).join('\n');
  await writeFile(path.join(opts.dir, 'meta.jsonl'), opts.count > 0 ? `${lines}\n` : '');
  const seconds = (performance.now() - started) / 1000;
  return { count: opts.count, seconds, stillsPerSecond: opts.count / seconds, metas: metas as StillMeta[] };
}

/** Several render sizes are allowed only when they all become the same model input size. */
function checkSizes(sizes: readonly { width: number; height: number }[], modelInput: ModelInputSpec | undefined): void {
  if (sizes.length <= 1) return;
  const list = sizes.map((s) => `${s.width}x${s.height}`).join(',');
  if (!modelInput) throw new SynthError(ErrorCode.SYNTH_OPTION, `--size ${list}: several sizes need --model-input, so that every still is written at one size`);
  const plans = sizes.map((s) => planModelInput(modelInput, s.width, s.height));
  const first = plans[0]!;
  if (plans.some((p) => p.width !== first.width || p.height !== first.height)) {
    const mapped = sizes.map((s, i) => `${s.width}x${s.height}→${plans[i]!.width}x${plans[i]!.height}`).join(', ');
    throw new SynthError(ErrorCode.SYNTH_OPTION, `--size ${list}: the sizes map to different model input sizes (${mapped}); give sizes of one aspect ratio`);
  }
}

/** Interleaved shares (i mod n) keep every worker's mix of conditions the same. */
async function runWorkers(dir: string, specs: StillSpec[], n: number, onDone: (meta: StillMeta) => void): Promise<void> {
  const source = workerSource();
  const runs: Promise<void>[] = [];
  for (let w = 0; w < n; w++) {
    const data: StillWorkerData = { dir, specs: specs.filter((_, i) => i % n === w) };
    runs.push(
      new Promise<void>((resolve, reject) => {
        const worker = new Worker(source, { workerData: data });
        worker.on('message', (meta: StillMeta) => onDone(meta));
        worker.once('error', (error) => reject(new SynthError(ErrorCode.SYNTH_WORKER, `stills worker failed: ${error.message}`, { cause: error })));
        worker.once('exit', (code) => (code === 0 ? resolve() : reject(new SynthError(ErrorCode.SYNTH_WORKER, `stills worker exited with code ${code}`))));
      }),
    );
  }
  await Promise.all(runs);
}

/** Built, the worker is still-worker.js; from TypeScript sources, a bootstrap that loads tsx first. */
function workerSource(): URL {
  const self = new URL(import.meta.url);
  return new URL(self.pathname.endsWith('.ts') ? './still-worker-tsx.mjs' : './still-worker.js', self);
}
