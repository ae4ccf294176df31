/**
 * The bench's helpers that need no pipeline (no roles, BullMQ or Redis): CPU time from /proc,
 * LoRA feeds merged as the worker merges them, and raw ONNX Runtime runs. Kept apart from
 * pipeline-common.ts so the sequential loop's own process (sequential-loop-process.ts) loads
 * what a plain script would, and nothing of the pipeline.
 */
import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import { retrievalDefaultsFromConfig, type StreamsegConfig } from '../src/shared/config.js';
import type { ModelPackage } from '../src/shared/model-manifest.js';
import { AdapterRegistry } from '../src/workers/adapters/adapter-registry.js';
import { MergedAdapterCache, zeroFeeds, type LoraFeeds } from '../src/workers/adapters/merged-adapter-cache.js';
import { resolveRetrievalOptions } from '../src/workers/adapters/retrieval.js';
import { ClassVocabulary } from '../src/workers/segmentation/class-vocabulary.js';
import { Preprocessor } from '../src/workers/segmentation/preprocess.js';

/** CPU seconds of this process and of its reaped children (ffmpeg decoders and encoders), from /proc. */
export async function cpuSeconds(): Promise<{ self: number; children: number }> {
  // Fields after the command name: utime stime cutime cstime are the 12th..15th, in clock ticks (100/s on Linux).
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const tick = 100;
  return { self: (fields[11]! + fields[12]!) / tick, children: (fields[13]! + fields[14]!) / tick };
}

export interface PipelineFeeds {
  feeds: LoraFeeds;
  label: string;
  adapters: { name: string; weight: number }[];
}

/** The feeds of `adapters` merged as the worker merges them (one cached merge); zero LoRA for none. */
export async function mergedFeeds(config: StreamsegConfig, pkg: ModelPackage, adapters: readonly { name: string; weight: number }[]): Promise<PipelineFeeds> {
  if (adapters.length === 0 || !pkg.manifest.adapters) return { feeds: zeroFeeds(pkg.manifest.lora.targets), label: 'base (zero LoRA)', adapters: [] };
  const registry = await AdapterRegistry.open({ pkg });
  const options = resolveRetrievalOptions(retrievalDefaultsFromConfig(config));
  const cache = new MergedAdapterCache(pkg.manifest.lora.targets);
  const request = {
    adapters: adapters.map((a) => ({ adapter: registry.get(a.name)!.adapter, weight: a.weight })),
    method: options.method,
    svdRank: options.svdRank,
  };
  cache.lookup(request); // the miss: merge once
  const { feeds, hit } = cache.lookup(request);
  if (!hit) throw new Error('merged adapter was not cached');
  await registry.close();
  return {
    feeds,
    label: `${options.method} merge of ${adapters.map((a) => `${a.name} ${a.weight}`).join(' + ')}`,
    adapters: adapters.map((a) => ({ name: a.name, weight: a.weight })),
  };
}

export interface RawResult {
  fps: number;
  /** CPU ms of this process per frame while only ORT ran. */
  cpuMsPerFrame: number;
  batches: number;
  msPerBatch: number;
}

/**
 * Bare `session.run` of full batches of `batchFrames` frames at the model input size the
 * producer plans for the video (`size`), with the feeds a worker builds; at least
 * `minBatches` and `minSeconds`.
 */
export async function runRaw(
  session: ort.InferenceSession,
  pkg: ModelPackage,
  lora: LoraFeeds,
  options: {
    batchFrames: number;
    size: { width: number; height: number };
    minBatches: number;
    minSeconds: number;
    /** The output fetched, as the worker fetches it (WorkerNetwork.output). @defaultValue the manifest's logits */
    output?: string;
  },
): Promise<RawResult> {
  const { manifest } = pkg;
  const { batchFrames, size, minBatches, minSeconds } = options;
  const fetches = [options.output ?? manifest.output.name];
  const pre = new Preprocessor({ ...manifest.input, width: size.width, height: size.height });
  const batch = new Float32Array(batchFrames * pre.frameFloats);
  // Pixel values do not change the work of a CNN on CPU; any plausible frame will do.
  const rgb = new Uint8Array(pre.frameBytes);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 2654435761) >>> 24;
  for (let slot = 0; slot < batchFrames; slot++) pre.write(rgb, batch, slot);
  const vocabulary = new ClassVocabulary(manifest).forJob();
  const feeds = {
    ...lora,
    [manifest.input.name]: new ort.Tensor('float32', batch, [batchFrames, 3, pre.height, pre.width]),
    [manifest.classEmbeddings.input]: vocabulary.embeddings,
  };
  for (let i = 0; i < 3; i++) await session.run(feeds, fetches);
  let batches = 0;
  const cpuBefore = await cpuSeconds();
  const started = performance.now();
  while (batches < minBatches || performance.now() - started < minSeconds * 1000) {
    await session.run(feeds, fetches);
    batches++;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = (await cpuSeconds()).self - cpuBefore.self;
  return { fps: (batches * batchFrames) / seconds, cpuMsPerFrame: (cpu * 1000) / (batches * batchFrames), batches, msPerBatch: (seconds * 1000) / batches };
}
