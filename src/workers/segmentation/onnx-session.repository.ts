import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { ErrorCode, ModelError, StreamsegError } from '../../shared/errors/index.js';
import type { Logger } from '../../shared/logger.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { CLASS_MAP_OUTPUT, withClassMapHead } from './class-map-head.js';
import { loadFoldedGraph } from './folded-graph.js';
import type { FoldedLoraFeeds } from './folded-lora-feeds.js';
import { compareModelInterface } from './model-interface.js';
import type { InferenceThreadInit, InferenceThreadReply, InferenceThreadRequest } from './onnx-session.thread.js';
import { ThreadFeedLedger } from './thread-feed-ledger.js';
import { SegmentationEngine, engineSpecOf, type EngineCallOptions, type EngineResult, type EngineSpec, type FrameSize } from './segmentation-engine.js';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface OnnxSessionOptions {
  /** `cuda` is tried first and falls back to `cpu` when CUDA cannot be loaded. */
  executionProvider: ExecutionProvider;
  /**
   * ORT intra-op threads per session; 0: ORT decides for a single session, and with several
   * inference threads the cores are split between their sessions (at least 1 each).
   */
  intraOpThreads: number;
  logger: Logger;
  /**
   * Run inference on worker threads, so the event loop (Redis, decoding, the sink) keeps
   * going while a batch runs. Off: `run` blocks the calling thread, as onnxruntime-node does.
   * @defaultValue true
   */
  inThread?: boolean;
  /**
   * Sessions, each on its own worker thread running one run at a time (with `inThread`); with
   * more than one, batches are split into runs of POOL_RUN_FRAMES. Two single-threaded sessions
   * beat one session with two threads on a 2-core machine that also decodes and encodes: a run's
   * parallel sections wait for the slowest intra-op thread, and with ffmpeg on the same cores one
   * of them is often descheduled (bench/README.md). On CUDA a single session runs whole batches.
   * @defaultValue 1
   */
  threads?: number;
}

/**
 * Session options for the segmentation network, shared with benchmarks that must measure
 * the same configuration. Spinning is off: by default ORT's intra-op threads busy-wait
 * between parallel sections, which on a small machine takes the cores that decoding, the
 * sink and ffmpeg need while the pipeline runs (measured on 2 cores: spinning cost CPU and
 * gave no faster inference under load, see bench/README.md).
 */
export function segmentationSessionOptions(options: Pick<OnnxSessionOptions, 'intraOpThreads'>): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    ...(options.intraOpThreads > 0 ? { intraOpNumThreads: options.intraOpThreads } : {}),
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/**
 * The inference threads' network: with the class-map output (class-map-head.ts) where it can be
 * added, so that the logits stay inside ONNX Runtime; else as it is, reduced by argmaxMasks.
 * Exported for the benches, whose raw ORT runs must run what the worker runs.
 */
export function withClassMapOutput(
  network: { bytes: Uint8Array; file?: string },
  spec: EngineSpec,
  pkg: ModelPackage,
  logger: Logger,
): { model: string | Uint8Array; spec: EngineSpec } {
  const head = withClassMapHead(network.bytes, spec.outputName);
  if ('bytes' in head) return { model: head.bytes, spec: { ...spec, classMapOutput: CLASS_MAP_OUTPUT } };
  logger.info({ model: pkg.manifest.name, reason: head.reason }, 'class masks reduced from the logits (no class-map output)');
  // From its file where it has one: weights stored beside it are found from the file's path only.
  return { model: network.file ?? network.bytes, spec };
}

/** One run's arguments, as SegmentationEngine takes them. */
type EngineRun = Parameters<SegmentationEngine['segment']>;

/** Where a session runs: this thread, a worker thread that owns it, or several such threads. */
interface InferenceRunner {
  /** Runs that make progress side by side. */
  readonly threads: number;
  segment(...run: EngineRun): Promise<EngineResult>;
  release(): Promise<void>;
}

export interface SegmentRequest {
  /** RGB24 frames at the video's model input size (planModelInput, resized by the producer). */
  frames: readonly Uint8Array[];
  /** That size; every frame of a request has it. */
  size: FrameSize;
  /** Every graph input but the image: class embeddings and the LoRA A/B of every target. */
  feeds: Record<string, ort.Tensor>;
  /** Logit channel c → mask value (Vocabulary.modelClassOf). */
  classOf: Uint8Array;
  /** Also return each frame's mean winning-class probability. @defaultValue false */
  confidence?: boolean;
}

export interface SegmentationOutput {
  /** One class-index mask per frame, input width × height bytes (views of one buffer). */
  masks: Buffer[];
  /** Time inside ONNX Runtime's `run` for the whole batch. */
  inferenceMs: number;
  /** Per frame, the mean probability of the winning class (when the request asked). */
  confidence?: Float32Array;
}

/**
 * The only place streamseg talks to ONNX Runtime for segmentation. A session serves every
 * job and every adapter mix: LoRA weights are graph inputs, so nothing is rebuilt per scene.
 * Where the package graph allows it, the session runs the network with its LoRA branches folded
 * into the weights, fed W + B·A per merge (folded-graph.ts): the branches cost a fifth of the
 * network's time per frame on models/default, for ΔW that stays the same for a whole scene.
 * By default each session lives on a worker thread (see onnx-session.thread.ts) and runs one
 * run at a time; `segment` may be called concurrently, and each run goes to the thread with the
 * fewest runs queued.
 */
export class OnnxSessionRepository {
  private released?: Promise<void>;

  private constructor(
    private readonly runner: InferenceRunner,
    readonly provider: ExecutionProvider,
    /** Set when the network runs with its LoRA branches folded into the weights (folded-graph.ts). */
    private readonly folded: FoldedLoraFeeds | undefined,
  ) {}

  /**
   * Loads the package's network and checks it against the manifest. Throws ModelError
   * E_MODEL_LOAD when ORT cannot load the file and E_MODEL_MISMATCH naming every input or
   * output that differs from what the manifest promises.
   */
  static async load(pkg: ModelPackage, options: OnnxSessionOptions): Promise<OnnxSessionRepository> {
    const base = segmentationSessionOptions(options);
    let session: ort.InferenceSession | undefined;
    let provider: ExecutionProvider = 'cpu';
    let fallbackReason: string | undefined;
    if (options.executionProvider === 'cuda') {
      // Fatal-only while trying: a missing CUDA library is expected on CPU machines and is
      // reported once below instead of as ORT's native error text on stderr. (The process-wide
      // level only takes effect if this is the process's first session.)
      const level = ort.env.logLevel;
      ort.env.logLevel = 'fatal';
      try {
        session = await ort.InferenceSession.create(pkg.modelPath, { ...base, executionProviders: ['cuda'], logSeverityLevel: 4 });
        provider = 'cuda';
      } catch (error) {
        fallbackReason = error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error);
      } finally {
        ort.env.logLevel = level;
      }
    }
    if (!session) {
      try {
        session = await ort.InferenceSession.create(pkg.modelPath, { ...base, executionProviders: ['cpu'] });
      } catch (cause) {
        const detail = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
        throw new ModelError(ErrorCode.MODEL_LOAD, `cannot load ${pkg.modelPath} with ONNX Runtime: ${detail}`, { cause });
      }
    }
    const problems = compareModelInterface(pkg.manifest, { inputs: session.inputMetadata, outputs: session.outputMetadata });
    if (problems.length > 0) {
      await session.release().catch(() => undefined);
      throw new ModelError(ErrorCode.MODEL_MISMATCH, `${pkg.modelPath} does not match ${pkg.dir}/model.json: ${problems.join('; ')}`);
    }
    const packageBytes = await readFile(pkg.modelPath);
    const folded = await loadFoldedGraph(pkg, packageBytes, session, { ...base, executionProviders: [provider] }, options.logger);
    if (folded) {
      await session.release().catch(() => undefined);
      session = folded.session;
    }
    const packageSpec = engineSpecOf(pkg.manifest);
    let runner: InferenceRunner = new InlineRunner(new SegmentationEngine(session, packageSpec), session);
    let classMapHead = false;
    // A GPU wants whole batches in one session; the split pays off where CPU cores are shared.
    const threads = options.inThread === false ? 0 : provider === 'cuda' ? 1 : Math.max(1, options.threads ?? 1);
    const intraOpThreads = threads > 1 && options.intraOpThreads === 0 ? Math.max(1, Math.floor(os.availableParallelism() / threads)) : options.intraOpThreads;
    if (threads > 0) {
      // The session above chose the provider and checked the interface; each thread loads its
      // own with the same options (another load of a small file per thread, once per process).
      const sessionOptions = { ...segmentationSessionOptions({ intraOpThreads }), executionProviders: [provider] };
      try {
        const network = folded ? { bytes: folded.bytes } : { bytes: packageBytes, file: pkg.modelPath };
        const { model, spec } = withClassMapOutput(network, packageSpec, pkg, options.logger);
        classMapHead = spec.classMapOutput !== undefined;
        const started = await Promise.allSettled(
          Array.from({ length: threads }, () => ThreadRunner.start({ model, modelPath: pkg.modelPath, sessionOptions, spec })),
        );
        const runners = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
        const failure = started.find((result) => result.status === 'rejected');
        if (failure) {
          await Promise.all([...runners.map((started) => started.release()), folded?.feeds.release()]);
          throw failure.reason;
        }
        runner = runners.length === 1 ? runners[0]! : new ThreadPoolRunner(runners);
      } finally {
        await session.release().catch(() => undefined);
      }
    }
    options.logger.info(
      {
        provider,
        requested: options.executionProvider,
        ...(fallbackReason ? { fallbackReason } : {}),
        intraOpThreads: intraOpThreads || 'auto',
        inferenceThreads: threads,
        model: `${pkg.manifest.name}@${pkg.manifest.version}`,
        loraFolded: folded !== undefined,
        convProjections: folded?.convProjections ?? 0,
        convChannelNorms: folded?.convChannelNorms ?? 0,
        classMapHead,
      },
      fallbackReason ? 'segmentation model loaded on cpu (cuda unavailable)' : `segmentation model loaded on ${provider}`,
    );
    return new OnnxSessionRepository(runner, provider, folded?.feeds);
  }

  /**
   * Segments a batch of frames: in one run, or with several inference threads split into runs of
   * POOL_RUN_FRAMES, spread over the threads. Batches of concurrent callers queue in call order.
   */
  async segment(request: SegmentRequest): Promise<SegmentationOutput> {
    if (this.released) throw new ModelError(ErrorCode.MODEL_LOAD, 'segmentation session already released');
    const { frames, size } = request;
    const plane = size.width * size.height;
    const frameBytes = plane * 3;
    frames.forEach((frame, slot) => {
      if (frame.length !== frameBytes)
        throw new RangeError(`frame ${slot} has ${frame.length} bytes, a ${size.width}x${size.height} RGB input needs ${frameBytes}`);
    });
    const call = { confidence: request.confidence === true };
    const feeds = this.folded ? await this.folded.convert(request.feeds) : request.feeds;
    const parts = await Promise.all(
      this.runsOf(frames).map((part) => {
        // One buffer of its own per run, handed to an inference thread without a copy.
        const batch = new Uint8Array(part.length * frameBytes);
        part.forEach((frame, slot) => batch.set(frame, slot * frameBytes));
        return this.runner.segment(batch, part.length, size, feeds, request.classOf, call);
      }),
    );
    const { masks, inferenceMs, confidence } = parts.length === 1 ? parts[0]! : joinResults(parts);
    const buffer = Buffer.from(masks.buffer, masks.byteOffset, masks.byteLength);
    return { masks: frames.map((_, slot) => buffer.subarray(slot * plane, (slot + 1) * plane)), inferenceMs, ...(confidence ? { confidence } : {}) };
  }

  /** A batch's runs: the whole batch, or with several threads runs of POOL_RUN_FRAMES, at least one per thread. */
  private runsOf(frames: readonly Uint8Array[]): Uint8Array[][] {
    const { threads } = this.runner;
    return splitEvenly(frames, threads > 1 ? Math.max(threads, Math.ceil(frames.length / POOL_RUN_FRAMES)) : 1);
  }

  /** Frees the native session (and its thread); idempotent. */
  release(): Promise<void> {
    return (this.released ??= Promise.all([this.runner.release(), this.folded?.release()]).then(() => undefined));
  }
}

/**
 * Frames per run when a worker has several inference threads. Each session's memory arena grows
 * to the largest run it makes: with one single-threaded session per thread, runs of 2 frames keep
 * two sessions within about the memory of one running a whole batch of 8 (models/default at
 * 224x128, RSS after the runs: ~80-100 MiB for 2 frames, ~155 for 8), and a single-threaded
 * run of 2 is no slower per frame (streamseg run on 1200 frames, 3 alternating pairs against
 * halves of the batch: 1-4% more frames/s; bench/README.md).
 */
const POOL_RUN_FRAMES = 2;

/** `items` in at most `parts` consecutive runs whose lengths differ by one at most. */
export function splitEvenly<T>(items: readonly T[], parts: number): T[][] {
  const count = Math.max(1, Math.min(parts, items.length));
  const size = Math.floor(items.length / count);
  const longer = items.length % count;
  const out: T[][] = [];
  for (let part = 0, start = 0; part < count; part++) {
    const end = start + size + (part < longer ? 1 : 0);
    out.push(items.slice(start, end));
    start = end;
  }
  return out;
}

/** The parts' results in order, as one batch's: inference time is the sum of the parts' runs. */
function joinResults(parts: readonly EngineResult[]): EngineResult {
  const masks = new Uint8Array(parts.reduce((sum, part) => sum + part.masks.length, 0));
  let offset = 0;
  for (const part of parts) {
    masks.set(part.masks, offset);
    offset += part.masks.length;
  }
  const confidences = parts.flatMap((part) => (part.confidence ? [part.confidence] : []));
  const confidence = confidences.length === parts.length ? Float32Array.from(confidences.flatMap((c) => [...c])) : undefined;
  return { masks, inferenceMs: parts.reduce((sum, part) => sum + part.inferenceMs, 0), ...(confidence ? { confidence } : {}) };
}

/** Several threads, each with its own session; a run goes to the least busy one. */
class ThreadPoolRunner implements InferenceRunner {
  private readonly queued: number[];

  constructor(private readonly runners: readonly ThreadRunner[]) {
    this.queued = runners.map(() => 0);
  }

  get threads(): number {
    return this.runners.length;
  }

  async segment(...run: EngineRun): Promise<EngineResult> {
    const slot = this.queued.indexOf(Math.min(...this.queued));
    this.queued[slot]!++;
    try {
      return await this.runners[slot]!.segment(...run);
    } finally {
      this.queued[slot]!--;
    }
  }

  async release(): Promise<void> {
    await Promise.all(this.runners.map((runner) => runner.release()));
  }
}

class InlineRunner implements InferenceRunner {
  readonly threads = 1;

  constructor(
    private readonly engine: SegmentationEngine,
    private readonly session: ort.InferenceSession,
  ) {}

  segment(...run: EngineRun): Promise<EngineResult> {
    return this.engine.segment(...run);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Built, the thread is onnx-session.thread.js; from TypeScript sources, a bootstrap that loads tsx first. */
function threadEntry(): URL {
  const self = new URL(import.meta.url);
  return new URL(self.pathname.endsWith('.ts') ? './onnx-session-thread-tsx.mjs' : './onnx-session.thread.js', self);
}

class ThreadRunner implements InferenceRunner {
  readonly threads = 1;
  private nextId = 0;
  private readonly feeds = new ThreadFeedLedger();
  private readonly pending = new Map<number, { resolve(output: EngineResult): void; reject(error: Error): void }>();
  private released?: Promise<void>;
  private exitError?: Error;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: InferenceThreadReply) => {
      if (reply.kind === 'result' || reply.kind === 'run-failed') {
        const waiter = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        if (reply.kind === 'result')
          waiter?.resolve({ masks: reply.masks, inferenceMs: reply.inferenceMs, ...(reply.confidence ? { confidence: reply.confidence } : {}) });
        else waiter?.reject(new Error(reply.message));
      }
    });
    const fail = (error: Error) => {
      this.exitError ??= error;
      for (const waiter of this.pending.values()) waiter.reject(this.exitError);
      this.pending.clear();
    };
    worker.on('error', (error) => fail(new StreamsegError(ErrorCode.INFERENCE_THREAD, `inference thread failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => fail(new StreamsegError(ErrorCode.INFERENCE_THREAD, `inference thread exited (code ${code})`)));
  }

  static start(init: InferenceThreadInit): Promise<ThreadRunner> {
    const worker = new Worker(threadEntry(), { workerData: init });
    return new Promise((resolve, reject) => {
      const onMessage = (reply: InferenceThreadReply) => {
        if (reply.kind === 'ready') {
          cleanup();
          resolve(new ThreadRunner(worker));
        } else if (reply.kind === 'load-failed') {
          cleanup();
          void worker.terminate();
          reject(new ModelError(ErrorCode.MODEL_LOAD, `cannot load ${init.modelPath} with ONNX Runtime (inference thread): ${reply.message}`));
        }
      };
      const onError = (error: Error) => {
        cleanup();
        reject(new ModelError(ErrorCode.MODEL_LOAD, `inference thread failed to start: ${error.message}`, { cause: error }));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
    });
  }

  segment(
    frames: Uint8Array,
    count: number,
    size: FrameSize,
    feeds: Record<string, ort.Tensor>,
    classOf: Uint8Array,
    call: EngineCallOptions = {},
  ): Promise<EngineResult> {
    if (this.exitError) return Promise.reject(this.exitError);
    for (const [name, tensor] of Object.entries(feeds)) {
      if (tensor.type !== 'float32')
        return Promise.reject(new ModelError(ErrorCode.MODEL_MISMATCH, `input "${name}" is ${tensor.type}; the segmentation network takes float32 inputs`));
    }
    // Sent data is cloned by postMessage (not transferred): callers keep cached LoRA and class tensors.
    const wire = this.feeds.wire(feeds);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: InferenceThreadRequest = { kind: 'segment', id, frames, count, size, feeds: wire.feeds, forget: wire.forget, classOf, call };
      this.worker.postMessage(request, [frames.buffer as ArrayBuffer]);
    });
  }

  release(): Promise<void> {
    return (this.released ??= (async () => {
      if (this.exitError) return;
      const done = new Promise<void>((resolve) => {
        this.worker.on('message', (reply: InferenceThreadReply) => reply.kind === 'released' && resolve());
        this.worker.once('exit', () => resolve());
      });
      const request: InferenceThreadRequest = { kind: 'release' };
      this.worker.postMessage(request);
      await Promise.race([done, new Promise((r) => setTimeout(r, 5000).unref())]);
      await this.worker.terminate();
    })());
  }
}
