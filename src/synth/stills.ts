import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Condition } from './conditions.js';
import { writeStillBatch } from './still-batch.js';
import type { StillWorkerData } from './still-worker.js';
import type { StillMeta, StillSpec } from './still.js';
import { SynthError } from './synth-error.js';

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
  if (opts.conditions.length === 0) throw new SynthError('E_SYNTH_OPTION', '--conditions: give at least one condition');
  const started = performance.now();
  await mkdir(path.join(opts.dir, 'images'), { recursive: true });
  await mkdir(path.join(opts.dir, 'masks'), { recursive: true });
  const specs: StillSpec[] = [];
  for (let index = 0; index < opts.count; index++) {
    specs.push({
      index,
      runSeed: opts.seed,
      condition: opts.conditions[index % opts.conditions.length]!,
      intensity: opts.intensity,
      width: opts.width,
      height: opts.height,
      supersample: opts.supersample,
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
        worker.once('error', (error) => reject(new SynthError('E_SYNTH_WORKER', `stills worker failed: ${error.message}`, { cause: error })));
        worker.once('exit', (code) => (code === 0 ? resolve() : reject(new SynthError('E_SYNTH_WORKER', `stills worker exited with code ${code}`))));
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
