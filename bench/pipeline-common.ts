/**
 * What the pipeline benchmarks share (`npm run bench`, bench/pipeline.bench.ts, and
 * `npm run bench:models`, bench/models.bench.ts): the bench video (rendered once and cached),
 * a run of producer + worker + sink in this process on a given Redis (as `streamseg run`
 * does), the LoRA feeds of the run's largest scene merged the way the worker merges them,
 * bare ONNX Runtime `session.run` on the same model, size, batch and feeds, and CPU time from
 * /proc.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { PipelineClient } from '../src/shared/pipeline-client.js';
import { startRoles, type RunningRoles } from '../src/cli/roles.js';
import { waitForVideo } from '../src/cli/video-waiter.js';
import type { StreamsegConfig } from '../src/shared/config.js';
import type { Logger } from '../src/shared/logger.js';
import type { ModelPackage } from '../src/shared/model-manifest.js';
import { videoKeys } from '../src/shared/redis-keys.js';
import { cpuSeconds, mergedFeeds, type PipelineFeeds } from './raw-ort.js';
import type { VideoReport } from '../src/workers/sink/report-builder.js';
import type { LoraFeeds } from '../src/workers/adapters/merged-adapter-cache.js';
import { loadFoldedGraph } from '../src/workers/segmentation/folded-graph.js';
import { segmentationSessionOptions, withClassMapOutput } from '../src/workers/segmentation/onnx-session.repository.js';
import { engineSpecOf } from '../src/workers/segmentation/segmentation-engine.js';

export const run = promisify(execFile);

export interface BenchVideoOptions {
  source: string;
  /** WxH */
  size: string;
  frames: string;
  fps: string;
  scenes: string;
  seed: string;
}

/** Where rendered bench videos are kept between runs (synth takes a minute or two). */
export const BENCH_CACHE_DIR = path.join(os.tmpdir(), 'streamseg-bench-cache');

/** The bench video: rendered once (`streamseg synth`, or ffmpeg's testsrc2) and kept in BENCH_CACHE_DIR. */
export async function benchVideo({ source, size, frames, fps, scenes, seed }: BenchVideoOptions): Promise<string> {
  await mkdir(BENCH_CACHE_DIR, { recursive: true });
  const file = path.join(BENCH_CACHE_DIR, `${source}-${size}-${frames}f-${fps}fps-${scenes}s-${seed}.mp4`);
  if (existsSync(file)) return file;
  const started = performance.now();
  if (source === 'synth') {
    const main = path.resolve('src/cli/main.ts');
    await run(
      process.execPath,
      ['--import', 'tsx', main, 'synth', '--out', file, '--frames', frames, '--scenes', scenes, '--size', size, '--fps', fps, '--seed', seed],
      {
        maxBuffer: 64 * 2 ** 20,
      },
    );
  } else if (source === 'testsrc2') {
    const duration = Number(frames) / Number(fps);
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=${size}:rate=${fps}:duration=${duration}`,
      '-c:v',
      'libx264',
      '-preset',
      'fast',
      '-pix_fmt',
      'yuv420p',
      file,
    ]);
  } else {
    throw new Error(`--source must be synth or testsrc2, got ${source}`);
  }
  console.log(`rendered ${file} in ${((performance.now() - started) / 1000).toFixed(0)} s (cached for later runs)`);
  return file;
}

export interface ProbedVideo {
  width: number;
  height: number;
  /** Frame rate as ffprobe's r_frame_rate, e.g. `24/1`. */
  rate: string;
  fps: number;
  packets: number;
  /** ffprobe's CSV line: width,height,rate,frames. */
  line: string;
}

/** Size, rate and packet count of the first video stream (ffprobe). */
export async function probeVideo(video: string): Promise<ProbedVideo> {
  const probe = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-count_packets',
    '-show_entries',
    'stream=width,height,r_frame_rate,nb_read_packets',
    '-of',
    'csv=p=0',
    video,
  ]);
  const line = probe.stdout.trim();
  const [width, height, rate, packets] = line.split(',');
  const [num, den = '1'] = rate!.split('/');
  return { width: Number(width), height: Number(height), rate: rate!, fps: Number(num) / Number(den), packets: Number(packets), line };
}

export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface PipelineResult {
  frames: number;
  /** Frames / (last sink frame − first sink frame). */
  steadyFps: number;
  steadySeconds: number;
  /** Frames / (decoding started → last sink frame). */
  fromDecodeFps: number;
  /** CPU seconds from submission to done: this process (all roles, ORT, libvips) and its ffmpeg children. */
  cpu: { self: number; children: number };
  report: VideoReport;
}

/**
 * One video through producer + segmentation worker + sink started in this process on
 * `redisUrl` (config.modelDir is the model; outDir must lie under config.outDir, as with
 * `run --out`). Steady-state frames/s from the Redis Stream entry ids of the sink's records.
 */
export async function runPipeline(
  context: { config: StreamsegConfig; logger: Logger },
  video: string,
  redisUrl: string,
  outDir: string,
): Promise<PipelineResult> {
  const { config, logger } = context;
  let roles: RunningRoles | undefined;
  let client: PipelineClient | undefined;
  try {
    roles = await startRoles(['producer', 'worker', 'sink'], { config, redisUrl, logger });
    client = await PipelineClient.connect(config, redisUrl);
    const cpuBefore = await cpuSeconds();
    const videoId = await client.submitter.submit(video, { outDir, fps: config.fps });
    const final = await waitForVideo(videoId, client.states, client.queues, { pollMs: 100 });
    const cpuAfter = await cpuSeconds();
    const report = JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as VideoReport;
    // Stream entry ids are `<server ms>-<seq>`, taken when the sink appended each frame record.
    const { stream } = videoKeys(videoId);
    const first = await client.redis.xrange(stream, '-', '+', 'COUNT', 1);
    const last = await client.redis.xrevrange(stream, '+', '-', 'COUNT', 1);
    const length = await client.redis.xlen(stream);
    if (length !== report.frames) throw new Error(`stream holds ${length} records, report says ${report.frames} frames (stream trimmed?)`);
    const ms = (entries: [string, string[]][]) => Number(entries[0]![0].split('-')[0]);
    const steadySeconds = (ms(last) - ms(first)) / 1000;
    const fromDecodeSeconds = (ms(last) - (final.startedAt ?? 0)) / 1000;
    return {
      frames: report.frames,
      steadyFps: (report.frames - 1) / steadySeconds,
      steadySeconds,
      fromDecodeFps: report.frames / fromDecodeSeconds,
      cpu: { self: cpuAfter.self - cpuBefore.self, children: cpuAfter.children - cpuBefore.children },
      report,
    };
  } finally {
    await client?.close();
    await roles?.close();
  }
}

/** The LoRA feeds of the scene with the most frames, merged the way the worker merges them (one cached merge). */
export async function pipelineFeeds(config: StreamsegConfig, pkg: ModelPackage, report: VideoReport | undefined): Promise<PipelineFeeds> {
  const scene = report?.scenes.slice().sort((a, b) => b.frames - a.frames)[0];
  return mergedFeeds(config, pkg, scene?.adapters.map((a) => ({ name: a.name, weight: a.weight })) ?? []);
}

/** The segmentation network as the worker runs it, for raw ORT runs beside the pipeline. */
export interface WorkerNetwork {
  /** With the worker's session options (ORT's own threads unless STREAMSEG_INTRA_OP_THREADS). */
  session: ort.InferenceSession;
  /** One intra-op thread, as each of the worker's sessions has on 2 cores. */
  oneThread: ort.InferenceSession;
  /** The output the worker's inference threads fetch: the class map where the network has one. */
  output: string;
  /** How it differs from the package graph, for the bench's output. */
  description: string;
  /** The package graph with its LoRA inputs, when the worker runs another network (folded, or with the class map). */
  packageGraph?: ort.InferenceSession;
  /** Feeds of the package graph (class embeddings, LoRA A and B) as `session` takes them. */
  feeds(lora: LoraFeeds): Promise<LoraFeeds>;
  release(): Promise<void>;
}

/**
 * Loads the worker's network as its inference threads load it (OnnxSessionRepository): the
 * package graph with its LoRA branches folded into the weights where it allows
 * (folded-graph.ts), and the class-map output where it can be added (class-map-head.ts).
 */
export async function loadWorkerNetwork(pkg: ModelPackage, config: StreamsegConfig, logger: Logger): Promise<WorkerNetwork> {
  const options = { ...segmentationSessionOptions(config), executionProviders: [config.executionProvider] };
  const oneThreadOptions = { ...segmentationSessionOptions({ intraOpThreads: 1 }), executionProviders: [config.executionProvider] };
  const packageBytes = await readFile(pkg.modelPath);
  const packageGraph = await ort.InferenceSession.create(pkg.modelPath, options);
  const folded = await loadFoldedGraph(pkg, packageBytes, packageGraph, options, logger);
  await folded?.session.release();
  const network = folded ? { bytes: folded.bytes } : { bytes: packageBytes, file: pkg.modelPath };
  const { model, spec } = withClassMapOutput(network, engineSpecOf(pkg.manifest), pkg, logger);
  const create = (sessionOptions: ort.InferenceSession.SessionOptions) =>
    typeof model === 'string' ? ort.InferenceSession.create(model, sessionOptions) : ort.InferenceSession.create(model, sessionOptions);
  const [session, oneThread] = [await create(options), await create(oneThreadOptions)];
  const description = [
    folded ? 'LoRA branches folded into the weights (folded-graph.ts)' : 'the package graph with its LoRA inputs (its branches cannot be folded)',
    spec.classMapOutput ? 'class map from the network (class-map-head.ts)' : 'argmax of the logits in JavaScript',
  ].join(', ');
  return {
    session,
    oneThread,
    output: spec.classMapOutput ?? spec.outputName,
    description,
    ...(folded || spec.classMapOutput ? { packageGraph } : {}),
    feeds: (lora) => (folded ? folded.feeds.convert(lora) : Promise.resolve(lora)),
    release: async () => void (await Promise.all([session.release(), oneThread.release(), packageGraph.release(), folded?.feeds.release()])),
  };
}
