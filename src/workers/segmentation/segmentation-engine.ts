import ort from 'onnxruntime-node';
import { ErrorCode, ModelError } from '../../shared/errors/index.js';
import type { ModelManifest } from '../../shared/model-manifest.js';
import { argmaxMasks, classMapMasks, meanConfidence } from './argmax.js';
import { Preprocessor } from './preprocess.js';

/** What the engine needs of the manifest (plain data: it crosses into the inference thread). */
export interface EngineSpec {
  input: Pick<ModelManifest['input'], 'name' | 'mean' | 'std'>;
  outputName: string;
  /**
   * The uint8 class-map output the worker adds to its network (class-map-head.ts); without one,
   * the logits are reduced here (argmaxMasks).
   */
  classMapOutput?: string;
}

/** The size of one batch's frames (each video has its own: see planModelInput). */
export interface FrameSize {
  width: number;
  height: number;
}

export function engineSpecOf(manifest: ModelManifest): EngineSpec {
  const { name, mean, std } = manifest.input;
  return { input: { name, mean, std }, outputName: manifest.output.name };
}

/** Preprocessors kept per input size; videos of a few aspect ratios at a time is the norm. */
const MAX_PREPROCESSORS = 8;

export interface EngineResult {
  /** `count` class-index masks of width × height bytes, back to back, in one ArrayBuffer of their own. */
  masks: Uint8Array;
  /** Time inside `session.run` alone. */
  inferenceMs: number;
  /** Per frame, the mean probability of the winning class (only when asked for). */
  confidence?: Float32Array;
}

export interface EngineCallOptions {
  /** Also measure each frame's mean winning-class probability (costs one exp per logit). */
  confidence?: boolean;
}

/**
 * Frames in, masks out, around one ONNX Runtime session: model-size RGB24 bytes are
 * normalised into a reused NCHW batch, the network runs, and the logits are reduced to
 * class-index masks right here. Doing both ends where the session lives (the inference
 * thread) keeps the caller's side small: a batch of 8 frames at 160x160 crosses threads as
 * 614 KB of bytes and comes back as 205 KB of masks, where float inputs and logits were
 * 2.5 MB and 6.6 MB per batch, copied and garbage-collected on the event loop's thread.
 */
export class SegmentationEngine {
  private readonly preprocessors = new Map<string, Preprocessor>();
  private batch = new Float32Array(0);
  private scratch = new Float32Array(0);
  /** Calls run one after another: they share `batch`, and ORT's `run` starts a tick after it is called. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly spec: EngineSpec,
  ) {}

  private preprocessorFor(size: FrameSize): Preprocessor {
    const key = `${size.width}x${size.height}`;
    let preprocessor = this.preprocessors.get(key);
    if (!preprocessor) {
      if (this.preprocessors.size >= MAX_PREPROCESSORS) this.preprocessors.delete(this.preprocessors.keys().next().value!);
      preprocessor = new Preprocessor({ ...this.spec.input, ...size });
      this.preprocessors.set(key, preprocessor);
    }
    return preprocessor;
  }

  /**
   * Segments `frames` (count × width × height × 3 RGB24 bytes); `feeds` are the other graph
   * inputs (class embeddings and LoRA A/B), `classOf[c]` the mask value of logit channel c.
   */
  segment(
    frames: Uint8Array,
    count: number,
    size: FrameSize,
    feeds: Record<string, ort.Tensor>,
    classOf: Uint8Array,
    call: EngineCallOptions = {},
  ): Promise<EngineResult> {
    const result = this.tail.then(() => this.segmentNow(frames, count, size, feeds, classOf, call));
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async segmentNow(
    frames: Uint8Array,
    count: number,
    size: FrameSize,
    feeds: Record<string, ort.Tensor>,
    classOf: Uint8Array,
    call: EngineCallOptions,
  ): Promise<EngineResult> {
    const preprocessor = this.preprocessorFor(size);
    if (!(count > 0) || frames.length !== count * preprocessor.frameBytes) {
      throw new RangeError(
        `${count} frames of ${preprocessor.width}x${preprocessor.height} RGB need ${count * preprocessor.frameBytes} bytes, got ${frames.length}`,
      );
    }
    const floats = count * preprocessor.frameFloats;
    if (this.batch.length < floats) this.batch = new Float32Array(floats);
    // ORT needs the data length to equal the shape: a view of exactly `count` frames.
    const batch = this.batch.length === floats ? this.batch : this.batch.subarray(0, floats);
    for (let slot = 0; slot < count; slot++) {
      preprocessor.write(frames.subarray(slot * preprocessor.frameBytes, (slot + 1) * preprocessor.frameBytes), batch, slot);
    }
    const image = new ort.Tensor('float32', batch, [count, 3, preprocessor.height, preprocessor.width]);
    const started = performance.now();
    const { outputName, classMapOutput } = this.spec;
    const fetches = classMapOutput === undefined ? [outputName] : call.confidence ? [classMapOutput, outputName] : [classMapOutput];
    const results = await this.session.run({ ...feeds, [this.spec.input.name]: image }, fetches);
    const inferenceMs = performance.now() - started;
    const logits = results[outputName];
    if (fetches.includes(outputName) && (!logits || logits.type !== 'float32'))
      throw new ModelError(ErrorCode.MODEL_MISMATCH, `model output "${outputName}" is missing or not float32`);
    const plane = preprocessor.width * preprocessor.height;
    let masks: Buffer[];
    if (classMapOutput === undefined) {
      if (this.scratch.length < plane) this.scratch = new Float32Array(plane);
      masks = argmaxMasks(logits!.data as Float32Array, logits!.dims, classOf, this.scratch);
    } else {
      const classMap = results[classMapOutput];
      if (!classMap || classMap.type !== 'uint8') throw new ModelError(ErrorCode.MODEL_MISMATCH, `output "${classMapOutput}" is missing or not uint8`);
      masks = classMapMasks(classMap.data as Uint8Array, classMap.dims, [count, preprocessor.height, preprocessor.width], classOf);
    }
    const confidence = call.confidence ? meanConfidence(logits!.data as Float32Array, logits!.dims) : undefined;
    return { masks: new Uint8Array(masks[0]!.buffer, 0, count * preprocessor.width * preprocessor.height), inferenceMs, ...(confidence ? { confidence } : {}) };
  }
}
