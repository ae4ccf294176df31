import path from 'node:path';
import ort from 'onnxruntime-node';
import { ErrorCode, ModelError } from '../../shared/errors/index.js';
import type { LetterboxRect } from '../../shared/letterbox.js';
import type { Logger } from '../../shared/logger.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { embedderRuns } from './adapter-metrics.js';

/** What scene embedding needs from an embedder (tests hand in fakes). */
export interface FrameEmbedder {
  /** Embedding size E. */
  readonly size: number;
  /** One L2-normalised embedding per frame (raw RGB24 model inputs of `size`), in one run. */
  embedFrames(frames: readonly Uint8Array[], size: { width: number; height: number }, crop?: LetterboxRect): Promise<Float32Array[]>;
}

export interface EmbedderOptions {
  /** @defaultValue 'cpu'; `cuda` falls back to CPU when the CUDA provider is missing. */
  executionProvider?: 'cpu' | 'cuda';
  /** ORT intra-op threads; 0 lets ORT decide. @defaultValue 0 */
  intraOpThreads?: number;
  logger?: Logger;
}

/**
 * Model input bytes (RGB24, HWC, `width`×`height`) → NCHW float32 (pixel/255 − mean)/std,
 * cropped to `crop` (the letterboxed content) when given, so padding bars do not shift the
 * style statistics an embedder looks at.
 */
export function preprocessRgb(
  frames: readonly Uint8Array[],
  width: number,
  height: number,
  mean: readonly number[],
  std: readonly number[],
  crop: LetterboxRect = { x: 0, y: 0, width, height },
): { data: Float32Array; dims: [number, number, number, number] } {
  const { x: x0, y: y0, width: cw, height: ch } = crop;
  if (x0 < 0 || y0 < 0 || cw < 1 || ch < 1 || x0 + cw > width || y0 + ch > height) {
    throw new RangeError(`crop ${JSON.stringify(crop)} does not fit a ${width}x${height} frame`);
  }
  const plane = cw * ch;
  const data = new Float32Array(frames.length * 3 * plane);
  // Plain locals and a plain loop: the array reads and closure of the earlier forEach version
  // boxed every intermediate double, ~4 MB of heap numbers per scene that V8 pretenured into
  // the old generation and collected in full GCs (sampling heap profiler of `streamseg run`).
  const scale0 = 1 / (255 * std[0]!);
  const scale1 = 1 / (255 * std[1]!);
  const scale2 = 1 / (255 * std[2]!);
  const shift0 = mean[0]! / std[0]!;
  const shift1 = mean[1]! / std[1]!;
  const shift2 = mean[2]! / std[2]!;
  for (let n = 0; n < frames.length; n++) {
    const frame = frames[n]!;
    if (frame.length !== width * height * 3)
      throw new RangeError(`frame ${n} has ${frame.length} bytes, expected ${width * height * 3} (RGB24 ${width}x${height})`);
    const base = n * 3 * plane;
    for (let y = 0; y < ch; y++) {
      let src = ((y0 + y) * width + x0) * 3;
      const red = base + y * cw;
      const green = red + plane;
      const blue = green + plane;
      for (let x = 0; x < cw; x++, src += 3) {
        data[red + x] = frame[src]! * scale0 - shift0;
        data[green + x] = frame[src + 1]! * scale1 - shift1;
        data[blue + x] = frame[src + 2]! * scale2 - shift2;
      }
    }
  }
  return { data, dims: [frames.length, 3, ch, cw] };
}

/** Mean of embeddings, L2-normalised: the embedding of a scene from its frames'. */
export function meanEmbedding(embeddings: readonly Float32Array[]): Float32Array {
  if (embeddings.length === 0) throw new RangeError('no embeddings to average');
  const out = new Float32Array(embeddings[0]!.length);
  for (const e of embeddings) for (let i = 0; i < out.length; i++) out[i] = out[i]! + e[i]!;
  let norm = 0;
  for (let i = 0; i < out.length; i++) norm += out[i]! * out[i]!;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < out.length; i++) out[i] = out[i]! / norm;
  return out;
}

/** The package's embedder.onnx behind one ORT session (one repository per external system). */
export class OnnxEmbedder implements FrameEmbedder {
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly pkg: ModelPackage,
    readonly size: number,
  ) {}

  static async create(pkg: ModelPackage, options: EmbedderOptions = {}): Promise<OnnxEmbedder> {
    const spec = pkg.manifest.embedder;
    if (!spec) throw new ModelError(ErrorCode.MODEL_MANIFEST, `${path.join(pkg.dir, 'model.json')} has no "embedder": adapter retrieval needs one`);
    const file = path.join(pkg.dir, spec.file);
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      ...(options.intraOpThreads ? { intraOpNumThreads: options.intraOpThreads } : {}),
      // No busy-waiting between runs: one scene's frames are embedded now and then, and ORT's
      // spinning threads took ~6× the run's own CPU afterwards, from the cores the pipeline uses.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    };
    let session: ort.InferenceSession;
    try {
      if (options.executionProvider === 'cuda') {
        try {
          session = await ort.InferenceSession.create(file, { ...sessionOptions, executionProviders: ['cuda', 'cpu'] });
        } catch (error) {
          options.logger?.warn({ err: (error as Error).message }, 'CUDA execution provider unavailable for the embedder; using CPU');
          session = await ort.InferenceSession.create(file, sessionOptions);
        }
      } else {
        session = await ort.InferenceSession.create(file, sessionOptions);
      }
    } catch (cause) {
      throw new ModelError(ErrorCode.MODEL_LOAD, `${file}: cannot load the embedder (${(cause as Error).message})`, { cause });
    }
    if (!session.inputNames.includes(spec.input) || !session.outputNames.includes(spec.output)) {
      throw new ModelError(
        ErrorCode.MODEL_MISMATCH,
        `${file}: expected input "${spec.input}" and output "${spec.output}", the graph has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}]`,
      );
    }
    return new OnnxEmbedder(session, pkg, spec.size);
  }

  async embedFrames(frames: readonly Uint8Array[], size: { width: number; height: number }, crop?: LetterboxRect): Promise<Float32Array[]> {
    if (frames.length === 0) return [];
    const { input, manifest } = { input: this.pkg.manifest.input, manifest: this.pkg.manifest };
    const { data, dims } = preprocessRgb(frames, size.width, size.height, input.mean, input.std, crop);
    const spec = manifest.embedder!;
    embedderRuns.inc();
    const result = await this.session.run({ [spec.input]: new ort.Tensor('float32', data, dims) });
    const output = result[spec.output]!;
    const values = output.data as Float32Array;
    if (output.dims.length !== 2 || output.dims[0] !== frames.length || output.dims[1] !== this.size) {
      throw new ModelError(
        ErrorCode.MODEL_MISMATCH,
        `embedder output "${spec.output}" has dims [${output.dims.join(', ')}], expected [${frames.length}, ${this.size}]`,
      );
    }
    return Array.from({ length: frames.length }, (_, i) => values.slice(i * this.size, (i + 1) * this.size));
  }

  /** Releases the session; idempotent. */
  close(): Promise<void> {
    this.closed ??= this.session.release();
    return this.closed;
  }
}
