import ort from 'onnxruntime-node';
import { ModelError } from '../../shared/errors/index.js';
import type { Logger } from '../../shared/logger.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { compareModelInterface } from './model-interface.js';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface OnnxSessionOptions {
  /** `cuda` is tried first and falls back to `cpu` when CUDA cannot be loaded. */
  executionProvider: ExecutionProvider;
  /** ORT intra-op threads; 0 lets ORT decide. */
  intraOpThreads: number;
  logger: Logger;
}

export interface SegmentationOutput {
  /** Logits [N, C, H, W], row-major; owned by the caller after `run`. */
  logits: Float32Array;
  dims: readonly number[];
}

/**
 * The only place streamseg talks to ONNX Runtime for segmentation. One session serves every
 * job and every adapter mix: LoRA weights are graph inputs, so nothing is rebuilt per scene.
 * `Session.run` is safe to call concurrently; ORT queues work on its own thread pool.
 */
export class OnnxSessionRepository {
  private released?: Promise<void>;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly provider: ExecutionProvider,
    private readonly outputName: string,
  ) {}

  /**
   * Loads the package's network and checks it against the manifest. Throws ModelError
   * E_MODEL_LOAD when ORT cannot load the file and E_MODEL_MISMATCH naming every input or
   * output that differs from what the manifest promises.
   */
  static async load(pkg: ModelPackage, options: OnnxSessionOptions): Promise<OnnxSessionRepository> {
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      ...(options.intraOpThreads > 0 ? { intraOpNumThreads: options.intraOpThreads } : {}),
    };
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
        throw new ModelError('E_MODEL_LOAD', `cannot load ${pkg.modelPath} with ONNX Runtime: ${detail}`, { cause });
      }
    }
    const problems = compareModelInterface(pkg.manifest, { inputs: session.inputMetadata, outputs: session.outputMetadata });
    if (problems.length > 0) {
      await session.release().catch(() => undefined);
      throw new ModelError('E_MODEL_MISMATCH', `${pkg.modelPath} does not match ${pkg.dir}/model.json: ${problems.join('; ')}`);
    }
    options.logger.info(
      {
        provider,
        requested: options.executionProvider,
        ...(fallbackReason ? { fallbackReason } : {}),
        intraOpThreads: options.intraOpThreads || 'auto',
        model: `${pkg.manifest.name}@${pkg.manifest.version}`,
      },
      fallbackReason ? 'segmentation model loaded on cpu (cuda unavailable)' : `segmentation model loaded on ${provider}`,
    );
    return new OnnxSessionRepository(session, provider, pkg.manifest.output.name);
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<SegmentationOutput> {
    const results = await this.session.run(feeds, [this.outputName]);
    const logits = results[this.outputName];
    if (!logits || logits.type !== 'float32') {
      throw new ModelError('E_MODEL_MISMATCH', `model output "${this.outputName}" is missing or not float32`);
    }
    return { logits: logits.data as Float32Array, dims: logits.dims };
  }

  /** Frees the native session; idempotent. */
  release(): Promise<void> {
    return (this.released ??= this.session.release());
  }
}
