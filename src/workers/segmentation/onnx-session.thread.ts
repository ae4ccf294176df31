/**
 * Worker-thread entry that owns the segmentation ONNX Runtime session (see
 * OnnxSessionRepository). onnxruntime-node's `session.run` is synchronous on the calling
 * thread: run on the main thread, every batch froze the event loop for its whole duration,
 * so the producer's decoding, the sink's Redis round trips, overlay and encoder writes, and
 * the worker's own prefetch all waited for inference instead of overlapping with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { SegmentationEngine, type EngineCallOptions, type EngineSpec, type FrameSize } from './segmentation-engine.js';

/** What the thread is started with (cloned into the thread). */
export interface InferenceThreadInit {
  /**
   * The network to load: the bytes of the package's with its LoRA branches folded and a
   * class-map output where that works, else the package's file.
   */
  model: string | Uint8Array;
  /** The package's model file, for messages. */
  modelPath: string;
  sessionOptions: ort.InferenceSession.SessionOptions;
  spec: EngineSpec;
}

/**
 * A float32 feed as it crosses threads: with its data (copied) the first time, by id alone while
 * the thread keeps it (ThreadFeedLedger decides which it keeps).
 */
export type WireTensor = { id: number; data: Float32Array; dims: readonly number[] } | { id: number };

export type InferenceThreadRequest =
  /**
   * `frames` (transferred): `count` RGB24 frames of `size` back to back; `feeds`: the other graph
   * inputs; `forget`: feed ids to drop first.
   */
  | {
      kind: 'segment';
      id: number;
      frames: Uint8Array;
      count: number;
      size: FrameSize;
      feeds: Record<string, WireTensor>;
      forget: number[];
      classOf: Uint8Array;
      call: EngineCallOptions;
    }
  | { kind: 'release' };

export type InferenceThreadReply =
  | { kind: 'ready' }
  | { kind: 'load-failed'; message: string }
  /** `masks` (transferred): `count` class-index masks back to back. */
  | { kind: 'result'; id: number; masks: Uint8Array; inferenceMs: number; confidence?: Float32Array }
  | { kind: 'run-failed'; id: number; message: string }
  | { kind: 'released' };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('onnx-session.thread must run in a worker thread');
  const init = workerData as InferenceThreadInit;
  const reply = (message: InferenceThreadReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  let session: ort.InferenceSession;
  let engine: SegmentationEngine;
  try {
    session =
      typeof init.model === 'string'
        ? await ort.InferenceSession.create(init.model, init.sessionOptions)
        : await ort.InferenceSession.create(init.model, init.sessionOptions);
    engine = new SegmentationEngine(session, init.spec);
  } catch (error) {
    reply({ kind: 'load-failed', message: error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error) });
    port.close();
    return;
  }
  // Requests are handled one at a time, in order: ORT parallelises inside a run with its own
  // intra-op threads, and a queue keeps concurrent jobs from oversubscribing the cores.
  let queue = Promise.resolve();
  const kept = new Map<number, ort.Tensor>();
  port.on('message', (request: InferenceThreadRequest) => {
    queue = queue.then(async () => {
      if (request.kind === 'release') {
        await session.release().catch(() => undefined);
        reply({ kind: 'released' });
        port.close();
        return;
      }
      try {
        for (const id of request.forget) kept.delete(id);
        const feeds: Record<string, ort.Tensor> = {};
        for (const [name, wire] of Object.entries(request.feeds)) {
          let tensor = kept.get(wire.id);
          if ('data' in wire) kept.set(wire.id, (tensor = new ort.Tensor('float32', wire.data, wire.dims)));
          if (!tensor) throw new Error(`feed "${name}" (id ${wire.id}) was not sent to this thread`);
          feeds[name] = tensor;
        }
        const { masks, inferenceMs, confidence } = await engine.segment(request.frames, request.count, request.size, feeds, request.classOf, request.call);
        reply({ kind: 'result', id: request.id, masks, inferenceMs, ...(confidence ? { confidence } : {}) }, [masks.buffer as ArrayBuffer]);
      } catch (error) {
        reply({ kind: 'run-failed', id: request.id, message: error instanceof Error ? error.message : String(error) });
      }
    });
  });
  reply({ kind: 'ready' });
}

void main();
