/**
 * Pipeline throughput next to the model's own throughput (issue 3): in one process run,
 *   (a) frames/s of producer + segmentation worker + sink, in this process, on a private
 *       redis-server, segmenting a rendered street video (as `streamseg run` does);
 *   (b) frames/s of bare ONNX Runtime `session.run` on the same model, batch size, input
 *       size, LoRA feeds (a cached merged adapter, as the worker feeds) and session options,
 *       on the network as the worker runs it (LoRA branches folded into the weights where the
 *       package allows, folded-graph.ts, and the class map fetched where the network gives one,
 *       class-map-head.ts; the package graph with its LoRA inputs is printed too);
 *   (c) their ratio. Target: pipeline/raw >= 0.8;
 *   (d) a ceiling for (a): the CPU per frame of raw ORT (the cheaper of (b) and a session with
 *       one intra-op thread, as the worker's sessions have on 2 cores) plus that of ffmpeg
 *       decoding the video and encoding its frames again with the sink's settings, spread
 *       perfectly over every core. Any pipeline that decodes, segments and encodes every frame on this machine does
 *       at least this work, so (d)/(b) bounds the ratio (c) from above;
 *   (e) frames/s of the plain sequential loop a user would write instead (issue 16,
 *       bench/sequential-loop.ts): ffmpeg decode → resize → ORT → overlay → ffmpeg encode and
 *       masks.ndjson, one batch after another, with raw ORT's feeds fed to the package graph
 *       as a user would (its LoRA inputs; streamseg's folding is its own), in a node process of its
 *       own with node's default settings (bench/sequential-loop-process.ts): the V8 heap
 *       settings a pipeline process makes (src/shared/pipeline-heap.ts) are process-wide and
 *       would reach a loop run in this process. pipeline/sequential is what streamseg's
 *       pipelining buys over it;
 *   (f) bytes sent to Redis per frame by kind (source pixels, model input, mask, the worker's
 *       result record, the sink's stream record, BullMQ jobs, other) during the pipeline run,
 *       and redis-server's used_memory_peak next to STREAMSEG_HIGH_WATER_BYTES (issue 16).
 *
 *   npm run bench -- [--source synth|testsrc2] [--size 640x360] [--frames 240] [--fps 24] [--scenes 6] [--input FILE] [--rounds 2]
 *
 * Pipeline frames/s is counted from the first frame the sink writes to the last one (Redis
 * Stream entry ids are the server's clock at each append), i.e. steady-state throughput
 * without the start-up fill of the first batch; the end-to-end figure (submission to
 * report.json) is printed beside it. The bench runs rounds of [pipeline, raw ORT, ceiling,
 * sequential loop] and pairs
 * each pipeline run with the raw sample right after it: on a shared machine the load moves
 * both figures, and the printed ratio is the median of the rounds' ratios. CPU time per frame
 * (this process and its ffmpeg children, from /proc) is printed too: it moves less with load.
 * Settings come from the environment as for `streamseg run` (STREAMSEG_BATCH_FRAMES,
 * STREAMSEG_INTRA_OP_THREADS, ...).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Command } from 'ioredis';
import { startEmbeddedRedis, type EmbeddedRedis } from '../src/cli/embedded-redis.js';
import { loadConfig, type StreamsegConfig } from '../src/shared/config.js';
import { createLogger } from '../src/shared/logger.js';
import { planModelInput } from '../src/shared/model-input-plan.js';
import { QUEUE_PREFIX } from '../src/shared/queues.js';
import { createRedis } from '../src/shared/redis.js';
import { loadModelPackage } from '../src/shared/model-manifest.js';
import { encoderArgs } from '../src/workers/sink/video-encoder.repository.js';
import { decode, decompress, type CocoRleString } from '../src/workers/sink/coco-rle.js';
import { benchVideo, loadWorkerNetwork, median, pipelineFeeds, probeVideo, run, runPipeline, type PipelineResult } from './pipeline-common.js';
import { cpuSeconds, runRaw, type RawResult } from './raw-ort.js';
import { rawRgbDecodeArgs, type SequentialResult } from './sequential-loop.js';
import type { SequentialProcessResult, SequentialSpec } from './sequential-loop-process.js';

const { values } = parseArgs({
  options: {
    source: { type: 'string', default: 'synth' },
    input: { type: 'string' },
    size: { type: 'string', default: '640x360' },
    frames: { type: 'string', default: '240' },
    fps: { type: 'string', default: '24' },
    scenes: { type: 'string', default: '6' },
    seed: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '2' },
  },
});
const TARGET = 0.8;
const tmp = await mkdtemp(path.join(os.tmpdir(), 'streamseg-bench-'));
// The outputs go to a temp dir, which must be the sink's output root (as `run --out` does).
const config: StreamsegConfig = loadConfig({ logLevel: process.env.LOG_LEVEL ?? 'warn', outDir: tmp });
const logger = createLogger(config.logLevel);

/**
 * (f) Bytes sent to Redis, by kind. Method: every command any ioredis connection of this
 * process writes to its socket passes through `Command.prototype.toWritable` (the RESP
 * encoding: BullMQ's connections, the roles', the client's, scripts by EVAL/EVALSHA too), so
 * the bench wraps it and adds the encoded length to the kind of the command. Chosen over the
 * alternatives because it needs no change to src/, sees every byte written rather than a
 * sample of keys that expire or are deleted within milliseconds (STRLEN / MEMORY USAGE
 * sampling), and counts bytes, not calls (INFO commandstats). The kinds add up to the total by
 * construction, and the total is checked against redis-server's own `total_net_input_bytes`
 * over the same window. Limits: a command is attributed whole (key names, RESP framing and
 * MULTI/EXEC included) to the kind of its key, so `source` is the frame's pixels plus ~60 bytes;
 * only this process's connections are counted (in this bench every role runs in it, so the
 * server's counter should agree); a command resent after a reconnect counts twice, as it is
 * sent twice. Keys: src/shared/redis-keys.ts (videoKeys), BullMQ's under QUEUE_PREFIX.
 */
const REDIS_KINDS = {
  source: 'source frame pixels (SET src)',
  input: 'model input (SET in)',
  mask: 'mask (SET mask)',
  record: "worker's result record (SET res, JSON)",
  stream: "sink's stream record (XADD script)",
  jobs: `BullMQ jobs: payloads, state (${QUEUE_PREFIX}:*)`,
  other: 'other: reads, deletes, meta, scenes, MULTI/EXEC',
} as const;
type RedisKind = keyof typeof REDIS_KINDS;
type RedisBytes = Record<RedisKind, number>;
const zeroBytes = (): RedisBytes => ({ source: 0, input: 0, mask: 0, record: 0, stream: 0, jobs: 0, other: 0 });
const FRAME_VALUE_KEY = /^ss:\{[^}]+\}:(src|in|mask|res):\d+$/;
const FRAME_VALUE_KIND = { src: 'source', in: 'input', mask: 'mask', res: 'record' } as const;
const STREAM_KEY = /^ss:\{[^}]+\}:frames$/;

function redisKind({ name, args }: Command): RedisKind {
  const first = args[0];
  if (name === 'set' && typeof first === 'string') {
    const match = FRAME_VALUE_KEY.exec(first);
    if (match) return FRAME_VALUE_KIND[match[1] as keyof typeof FRAME_VALUE_KIND];
  }
  // Scripts: EVAL/EVALSHA <script> <numkeys> <first key> ...
  if ((name === 'evalsha' || name === 'eval') && typeof args[2] === 'string' && STREAM_KEY.test(args[2])) return 'stream';
  if (args.some((arg) => typeof arg === 'string' && arg.startsWith(`${QUEUE_PREFIX}:`))) return 'jobs';
  return 'other';
}

/** Running totals since the last reset; the wrapper stays installed for the whole bench (a few regex tests per command). */
let redisBytesSent = zeroBytes();
const toWritable = Command.prototype.toWritable;
Command.prototype.toWritable = function countedToWritable(this: Command, socket: object): string | Buffer {
  const resp = toWritable.call(this, socket);
  redisBytesSent[redisKind(this)] += typeof resp === 'string' ? Buffer.byteLength(resp) : resp.length;
  return resp;
};

interface RedisTraffic {
  /** RESP bytes this process sent during the pipeline run, by kind. */
  sent: RedisBytes;
  /** redis-server's `total_net_input_bytes` / `total_net_output_bytes` over the same window. */
  serverIn: number;
  serverOut: number;
  /** `used_memory_peak` after the run: since redis-server started, i.e. the max over the rounds so far. */
  usedMemoryPeak: number;
}

async function redisInfo(redis: ReturnType<typeof createRedis>, section: string): Promise<Map<string, number>> {
  const text = await redis.info(section);
  return new Map(
    text
      .split('\r\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), Number(line.slice(line.indexOf(':') + 1))]),
  );
}

interface CeilingResult {
  fps: number;
  /** CPU ms per frame of ORT: the cheaper of raw ORT with its own threads and with one. */
  ortCpuMsPerFrame: number;
  /** CPU ms per frame of ffmpeg decoding the video and encoding its frames again, alone. */
  codecCpuMsPerFrame: number;
}

/** Runs a process to the end; rejects with its stderr when it fails. */
function finished(child: ReturnType<typeof spawn>, name: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited with ${code}: ${stderr.trim()}`))));
  });
}

/**
 * (d): the CPU a pipeline cannot avoid, spread perfectly over every core: raw ORT's CPU per
 * frame (with its own threads or one, whichever is cheaper) plus ffmpeg's for decoding the
 * video to RGB24 at its own size and rate (as the producer does) piped into an encoder with the
 * sink's arguments (measured alone, right here). No pipeline that decodes, segments and encodes
 * every frame on this machine can be faster, whatever it overlaps; nor faster than ORT alone
 * (one session with its threads, or single-threaded sessions on every core).
 */
async function runCeiling(
  video: string,
  size: { width: number; height: number; fps: number },
  raw: RawResult,
  rawOneThread: RawResult,
): Promise<CeilingResult> {
  const before = await cpuSeconds();
  const decoder = spawn('ffmpeg', rawRgbDecodeArgs(video, size.width, size.height, size.fps), { stdio: ['ignore', 'pipe', 'pipe'] });

  const encoder = spawn('ffmpeg', encoderArgs({ ...size, preset: config.encoderPreset }, path.join(tmp, 'ceiling.mp4')), { stdio: ['pipe', 'ignore', 'pipe'] });
  let bytes = 0;
  decoder.stdout!.on('data', (chunk: Buffer) => (bytes += chunk.length));
  decoder.stdout!.pipe(encoder.stdin!);
  await Promise.all([finished(decoder, 'ffmpeg decode'), finished(encoder, 'ffmpeg encode')]);
  const frames = bytes / (size.width * size.height * 3);
  const codecCpuMsPerFrame = (((await cpuSeconds()).children - before.children) * 1000) / frames;
  const cores = os.cpus().length;
  const ortCpuMsPerFrame = Math.min(raw.cpuMsPerFrame, rawOneThread.cpuMsPerFrame);
  const ortAlone = Math.max(raw.fps, rawOneThread.fps * cores);
  return { fps: Math.min(ortAlone, (1000 * cores) / (ortCpuMsPerFrame + codecCpuMsPerFrame)), ortCpuMsPerFrame, codecCpuMsPerFrame };
}

interface SequentialRound extends SequentialResult {
  /** CPU seconds of the loop: its node process (the loop, ORT, sharp) and its two ffmpeg children. */
  cpu: { self: number; children: number };
  check: OutputCheck;
}

/** Frames ffprobe decodes from a video (counted, not the container's claim). */
async function countFrames(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'v:0',
    '-count_frames',
    '-show_entries',
    'stream=nb_read_frames',
    '-of',
    'csv=p=0',
    file,
  ]);
  return Number(stdout.trim());
}

async function ndjsonLines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter((line) => line.length > 0);
}

/** Each frame's class names per pixel (row-major), from a masks.ndjson line; `ids` numbers the names. */
function classMap(line: string, ids: Map<string, number>): Uint8Array {
  const { size, masks } = JSON.parse(line) as { size: [number, number]; masks: Record<string, CocoRleString> };
  const map = new Uint8Array(size[0] * size[1]);
  for (const [name, rle] of Object.entries(masks)) {
    if (!ids.has(name)) ids.set(name, ids.size + 1);
    const id = ids.get(name)!;
    const bits = decode(decompress(rle));
    for (let p = 0; p < bits.length; p++) if (bits[p]) map[p] = id;
  }
  return map;
}

interface OutputCheck {
  videoFrames: { pipeline: number; sequential: number };
  maskLines: { pipeline: number; sequential: number };
  /** Share of pixels (all frames) whose class is the same in both masks.ndjson. */
  agreement: number;
  /** The same over the frames the pipeline segmented with the loop's adapters (should be ~1). */
  sameAdapters: { frames: number; agreement: number };
}

/**
 * The sequential loop must write what the pipeline writes: as many frames in annotated.mp4
 * (decoded by ffprobe) and as many lines in masks.ndjson, or its frames/s mean nothing.
 * Throws otherwise. Also measures how often the two agree on a pixel's class (they need not
 * agree everywhere: the pipeline merges each scene's own adapters, the loop one merge for all).
 */
async function checkOutputs(pipelineDir: string, pipelineFrames: number, sequential: SequentialResult): Promise<OutputCheck> {
  const videoFrames = { pipeline: await countFrames(path.join(pipelineDir, 'annotated.mp4')), sequential: await countFrames(sequential.files.video) };
  const pipelineLines = await ndjsonLines(path.join(pipelineDir, 'masks.ndjson'));
  const sequentialLines = await ndjsonLines(sequential.files.masks);
  const maskLines = { pipeline: pipelineLines.length, sequential: sequentialLines.length };
  const counts = [videoFrames.pipeline, videoFrames.sequential, maskLines.pipeline, maskLines.sequential, sequential.frames];
  if (counts.some((n) => n !== pipelineFrames)) {
    throw new Error(
      `SEQUENTIAL LOOP OUTPUT DOES NOT MATCH THE PIPELINE'S: annotated.mp4 frames (ffprobe) pipeline ${videoFrames.pipeline}, sequential ${videoFrames.sequential}; ` +
        `masks.ndjson lines pipeline ${maskLines.pipeline}, sequential ${maskLines.sequential}; frames pipeline report ${pipelineFrames}, sequential loop ${sequential.frames}`,
    );
  }
  const ids = new Map<string, number>();
  const all = { same: 0, pixels: 0 };
  const matched = { same: 0, pixels: 0, frames: 0 };
  pipelineLines.forEach((line, i) => {
    const a = classMap(line, ids);
    const b = classMap(sequentialLines[i]!, ids);
    if (a.length !== b.length) throw new Error(`masks.ndjson line ${i}: pipeline mask has ${a.length} pixels, sequential ${b.length}`);
    let same = 0;
    for (let p = 0; p < a.length; p++) if (a[p] === b[p]) same++;
    all.same += same;
    all.pixels += a.length;
    const adapters = (text: string) => JSON.stringify((JSON.parse(text) as { adapters: unknown }).adapters);
    if (adapters(line) === adapters(sequentialLines[i]!)) {
      matched.same += same;
      matched.pixels += a.length;
      matched.frames++;
    }
  });
  // Same model, input and feeds: only float rounding (other batch neighbours) may flip a pixel.
  if (matched.frames > 0 && matched.same / matched.pixels < 0.99) {
    throw new Error(
      `SEQUENTIAL LOOP MASKS DIFFER FROM THE PIPELINE'S: ${((matched.same / matched.pixels) * 100).toFixed(2)}% of pixels agree in the ${matched.frames} frames both segmented with the same adapters`,
    );
  }
  return {
    videoFrames,
    maskLines,
    agreement: all.same / all.pixels,
    sameAdapters: { frames: matched.frames, agreement: matched.pixels ? matched.same / matched.pixels : NaN },
  };
}

/** Runs the sequential loop in its own node process (bench/sequential-loop-process.ts). */
async function runSequentialProcess(spec: SequentialSpec): Promise<SequentialProcessResult> {
  const entry = fileURLToPath(new URL('./sequential-loop-process.ts', import.meta.url));
  const { stdout } = await run(process.execPath, ['--import', 'tsx', entry, JSON.stringify(spec)], { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as SequentialProcessResult;
}

const video = values.input ? path.resolve(values.input) : await benchVideo(values);
const pkg = await loadModelPackage(config.modelDir);
let redis: EmbeddedRedis | undefined;
try {
  const probe = await probeVideo(video);
  console.log(`video ${path.basename(video)}: ${probe.line} (width,height,rate,frames)`);
  // The model input the producer plans for this video (a fit model's size follows the source's).
  const modelSize = planModelInput(pkg.manifest.input, probe.width, probe.height);
  console.log(
    `model ${pkg.manifest.name} ${modelSize.width}x${modelSize.height}, batch ${config.batchFrames}, ` +
      `intra-op threads ${config.intraOpThreads || 'auto'}, inference threads ${config.inferenceThreads}, worker concurrency ${config.workerConcurrency}, ${os.cpus().length} cores, loadavg ${os.loadavg()[0]!.toFixed(2)}`,
  );

  redis = await startEmbeddedRedis();
  const infoRedis = createRedis(redis.url);
  // The worker's session options (threads, no spinning, optimisation level), on this thread:
  // nothing but ORT itself between the feeds and the logits, and the network as the worker runs
  // it: with its LoRA branches folded into the weights where the package allows.
  const network = await loadWorkerNetwork(pkg, config, logger);
  const { session: rawSession, oneThread: oneThreadSession, packageGraph } = network;
  await runRaw(rawSession, pkg, await network.feeds((await pipelineFeeds(config, pkg, undefined)).feeds), {
    output: network.output,
    batchFrames: config.batchFrames,
    size: modelSize,
    minBatches: 5,
    minSeconds: 1,
  }); // page the model in before anything is timed

  // Rounds of [pipeline, raw]: on a shared machine the load changes from minute to minute,
  // so each pipeline run is compared with the raw sample taken right after it (same feeds).
  const rounds: {
    pipeline: PipelineResult;
    raw: RawResult;
    rawOneThread: RawResult;
    rawPackage: RawResult;
    ceiling: CeilingResult;
    sequential: SequentialRound;
    traffic: RedisTraffic;
    lora: string;
    load: number;
  }[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const load = os.loadavg()[0]!;
    const pipelineDir = path.join(tmp, `out-${r}`);
    // (f): the window opens after this INFO's reply (the server counted it, the bench does not)
    // and closes with the next INFO (both count it).
    const statsBefore = await redisInfo(infoRedis, 'stats');
    redisBytesSent = zeroBytes();
    const pipeline = await runPipeline({ config, logger }, video, redis.url, pipelineDir);
    const statsAfter = await redisInfo(infoRedis, 'stats');
    const sent = { ...redisBytesSent };
    const traffic: RedisTraffic = {
      sent,
      serverIn: statsAfter.get('total_net_input_bytes')! - statsBefore.get('total_net_input_bytes')!,
      serverOut: statsAfter.get('total_net_output_bytes')! - statsBefore.get('total_net_output_bytes')!,
      usedMemoryPeak: (await redisInfo(infoRedis, 'memory')).get('used_memory_peak')!,
    };
    const lora = await pipelineFeeds(config, pkg, pipeline.report);
    const raw = await runRaw(rawSession, pkg, await network.feeds(lora.feeds), {
      output: network.output,
      batchFrames: config.batchFrames,
      size: modelSize,
      minBatches: 20,
      minSeconds: 8,
    });
    // With several inference threads the worker gives each session a share of the cores (one
    // thread each on 2 cores), which costs less CPU per frame than ORT's own threading: the
    // ceiling takes the cheaper of the two, so that it stays a bound.
    const rawOneThread = await runRaw(oneThreadSession, pkg, await network.feeds(lora.feeds), {
      output: network.output,
      batchFrames: config.batchFrames,
      size: modelSize,
      minBatches: 10,
      minSeconds: 4,
    });
    // What the sequential loop runs: the package graph, fed its LoRA inputs.
    const rawPackage = packageGraph
      ? await runRaw(packageGraph, pkg, lora.feeds, { batchFrames: config.batchFrames, size: modelSize, minBatches: 10, minSeconds: 4 })
      : raw;
    const outputFps = config.fps ?? probe.fps;
    const size = { width: probe.width, height: probe.height, fps: outputFps };
    const ceiling = await runCeiling(video, size, raw, rawOneThread);
    // (e): the plain loop in a process of its own (node's defaults, as a user's script), with
    // the worker's session options and raw ORT's merged adapter.
    const { loop, cpu } = await runSequentialProcess({
      video,
      ...size,
      adapters: lora.adapters,
      batchFrames: config.batchFrames,
      preset: config.encoderPreset,
      overlayAlpha: config.overlayAlpha,
      outDir: path.join(tmp, `sequential-${r}`),
    });
    const check = await checkOutputs(pipelineDir, pipeline.frames, loop);
    const sequential = { ...loop, cpu, check };
    rounds.push({ pipeline, raw, rawOneThread, rawPackage, ceiling, sequential, traffic, lora: lora.label, load });
  }
  await network.release();
  infoRedis.disconnect();

  const row = (label: string, value: string, note = '') => console.log(`${label.padEnd(44)}${value.padStart(10)}  ${note}`);
  const fps = (x: number) => x.toFixed(2);
  console.log(`LoRA feeds of raw ORT (the pipeline's largest scene): ${rounds[0]!.lora}`);
  console.log(
    `network of (b), (d) and the pipeline: ${network.description}; the loop (e) runs the package graph with its LoRA inputs and the argmax in JavaScript`,
  );
  rounds.forEach(({ pipeline, raw, rawOneThread, rawPackage, ceiling, sequential, traffic, load }, r) => {
    const frames = pipeline.frames;
    const { timings } = pipeline.report;
    console.log('');
    console.log(`round ${r + 1} (1-min loadavg at its start ${load.toFixed(2)})`.padEnd(44) + 'frames/s'.padStart(10));
    row('(a) pipeline, first→last sink frame', fps(pipeline.steadyFps), `${frames} frames in ${pipeline.steadySeconds.toFixed(1)} s`);
    row('    pipeline, decode start→last sink frame', fps(pipeline.fromDecodeFps));
    row('    pipeline, submit→report.json', fps(timings.framesPerSecond), `${(timings.wallMs / 1000).toFixed(1)} s wall`);
    row(`(b) raw ORT session.run, batch ${config.batchFrames}`, fps(raw.fps), `${raw.batches} batches, ${raw.msPerBatch.toFixed(0)} ms each`);
    row(
      '    raw ORT, one intra-op thread',
      fps(rawOneThread.fps),
      `${rawOneThread.cpuMsPerFrame.toFixed(1)} ms CPU/frame against ${raw.cpuMsPerFrame.toFixed(1)} with ORT's own threads`,
    );
    if (rawPackage !== raw)
      row(
        '    raw ORT, package graph with LoRA inputs',
        fps(rawPackage.fps),
        `${rawPackage.cpuMsPerFrame.toFixed(1)} ms CPU/frame, the network the loop (e) runs (ORT's own threads)`,
      );
    row('(c) ratio pipeline/raw', (pipeline.steadyFps / raw.fps).toFixed(2), `end-to-end: ${(timings.framesPerSecond / raw.fps).toFixed(2)}`);
    row(
      '(d) ceiling: CPU of ORT + ffmpeg decode→encode',
      fps(ceiling.fps),
      `ceiling/raw ${(ceiling.fps / raw.fps).toFixed(2)} (${ceiling.ortCpuMsPerFrame.toFixed(1)} + ${ceiling.codecCpuMsPerFrame.toFixed(1)} ms CPU/frame over ${os.cpus().length} cores)`,
    );
    row(
      '(e) sequential loop, first→last encoded frame',
      fps(sequential.steadyFps),
      `${sequential.frames} frames in ${sequential.steadySeconds.toFixed(1)} s; end-to-end ${fps(sequential.endToEndFps)} (${sequential.wallSeconds.toFixed(1)} s wall)`,
    );
    row(
      '    ratio pipeline/sequential',
      (pipeline.steadyFps / sequential.steadyFps).toFixed(2),
      `end-to-end: ${(timings.framesPerSecond / sequential.endToEndFps).toFixed(2)}`,
    );
    const seqSelf = (sequential.cpu.self * 1000) / sequential.frames;
    const seqChildren = (sequential.cpu.children * 1000) / sequential.frames;
    const step = (ms: number) => (ms / sequential.frames).toFixed(1);
    console.log(
      `sequential loop: CPU ${(seqSelf + seqChildren).toFixed(1)} ms/frame (${seqSelf.toFixed(1)} its node process, ${seqChildren.toFixed(1)} ffmpeg); ` +
        `wall ms/frame: decode wait ${step(sequential.stepMs.decode)}, resize ${step(sequential.stepMs.resize)}, ORT + argmax ${step(sequential.stepMs.infer)}, ` +
        `upscale + blend + encode write + RLE ${step(sequential.stepMs.output)}`,
    );
    const { check } = sequential;
    console.log(
      `outputs checked: annotated.mp4 ${check.videoFrames.pipeline} = ${check.videoFrames.sequential} frames (ffprobe), masks.ndjson ${check.maskLines.pipeline} = ${check.maskLines.sequential} lines; ` +
        `classes agree on ${(check.agreement * 100).toFixed(1)}% of pixels (the pipeline merges each scene's adapters, the loop one merge for all), ` +
        `on ${(check.sameAdapters.agreement * 100).toFixed(2)}% in the ${check.sameAdapters.frames} frames the pipeline segmented with the loop's adapters`,
    );
    const self = (pipeline.cpu.self * 1000) / frames;
    const children = (pipeline.cpu.children * 1000) / frames;
    console.log(
      `CPU per frame: raw ORT ${raw.cpuMsPerFrame.toFixed(1)} ms; pipeline ${(self + children).toFixed(1)} ms ` +
        `(${self.toFixed(1)} this process, ${children.toFixed(1)} ffmpeg; redis-server not counted) → raw/pipeline CPU ${(raw.cpuMsPerFrame / (self + children)).toFixed(2)}`,
    );
    console.log(`stage timings (report.json; active ms summed over jobs, stages overlap):`);
    for (const [stage, ms] of Object.entries(timings.stageMs)) {
      console.log(`  ${stage.padEnd(20)} ${ms.toFixed(0).padStart(8)} ms  ${(ms / frames).toFixed(1).padStart(6)} ms/frame`);
    }
    const kB = (bytes: number) => (bytes / frames / 1000).toFixed(1);
    const total = Object.values(traffic.sent).reduce((a, b) => a + b, 0);
    console.log(`bytes sent to Redis per frame, pipeline run (RESP-encoded commands of this process, by kind; kB = 1000 bytes):`);
    for (const [kind, label] of Object.entries(REDIS_KINDS)) {
      const bytes = traffic.sent[kind as RedisKind];
      console.log(`  ${label.padEnd(48)} ${kB(bytes).padStart(8)} kB  ${((bytes / total) * 100).toFixed(1).padStart(5)}%`);
    }
    console.log(
      `  ${'total'.padEnd(48)} ${kB(total).padStart(8)} kB  (${(total / 1e6).toFixed(1)} MB in all; redis-server total_net_input_bytes ${kB(traffic.serverIn)} kB/frame, ` +
        `counted/server ${(total / traffic.serverIn).toFixed(4)}; read back from Redis, total_net_output_bytes: ${kB(traffic.serverOut)} kB/frame)`,
    );
    const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    const frameBytes = (traffic.sent.source + traffic.sent.input) / frames;
    console.log(
      `Redis used_memory_peak ${MiB(traffic.usedMemoryPeak)} MiB = ${(traffic.usedMemoryPeak / config.highWaterBytes).toFixed(2)} × STREAMSEG_HIGH_WATER_BYTES (${MiB(config.highWaterBytes)} MiB) ` +
        `(since redis-server started: max over rounds 1..${r + 1}); the frame mark binds first when STREAMSEG_HIGH_WATER_FRAMES × (source + input) ` +
        `= ${config.highWaterFrames} × ${(frameBytes / 1000).toFixed(1)} kB = ${MiB(config.highWaterFrames * frameBytes)} MiB is below it`,
    );
  });
  const ratios = rounds.map(({ pipeline, raw }) => pipeline.steadyFps / raw.fps);
  console.log('');
  console.log(
    `pipeline ${fps(median(rounds.map((x) => x.pipeline.steadyFps)))} frames/s, raw ORT ${fps(median(rounds.map((x) => x.raw.fps)))} frames/s (medians of ${rounds.length} rounds)`,
  );
  console.log(`ratio pipeline/raw = ${median(ratios).toFixed(2)} (target >= ${TARGET}; median of rounds ${ratios.map((x) => x.toFixed(2)).join(', ')})`);
  const ceilings = rounds.map(({ ceiling, raw }) => ceiling.fps / raw.fps);
  const reached = rounds.map(({ pipeline, ceiling }) => pipeline.steadyFps / ceiling.fps);
  console.log(
    `ceiling/raw = ${median(ceilings).toFixed(2)} (CPU of decode + inference + encode alone, on every core); pipeline/ceiling = ${median(reached).toFixed(2)} ` +
      `(medians of rounds ${ceilings.map((x) => x.toFixed(2)).join(', ')} and ${reached.map((x) => x.toFixed(2)).join(', ')})`,
  );
  const overSequential = rounds.map(({ pipeline, sequential }) => pipeline.steadyFps / sequential.steadyFps);
  const sequentialCpu = rounds.map(({ sequential }) => ((sequential.cpu.self + sequential.cpu.children) * 1000) / sequential.frames);
  console.log(
    `pipeline/sequential = ${median(overSequential).toFixed(2)} (first→last frame frames/s of the pipeline over the plain loop's; median of rounds ${overSequential.map((x) => x.toFixed(2)).join(', ')}; ` +
      `sequential loop ${fps(median(rounds.map((x) => x.sequential.steadyFps)))} frames/s, ${median(sequentialCpu).toFixed(1)} ms CPU/frame, medians)`,
  );
} finally {
  await redis?.stop();
  await rm(tmp, { recursive: true, force: true });
}
