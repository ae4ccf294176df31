import ort from 'onnxruntime-node';
import type { Logger } from '../../shared/logger.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { withConvChannelNorms } from './channel-norm-conv.js';
import { withConvProjections } from './einsum-projection.js';
import { FoldedLoraFeeds } from './folded-lora-feeds.js';
import { foldLoraBranches, type FoldedLoraModel } from './lora-fold.js';

export interface FoldedGraph {
  /** The folded model, for sessions of their own (inference threads). */
  bytes: Uint8Array;
  /** A session of it, already created and checked. */
  session: ort.InferenceSession;
  /** Turns LoRA feeds into its weight feeds; released with the session. */
  feeds: FoldedLoraFeeds;
  /** Class projections it computes as a 1x1 Conv instead of an Einsum (einsum-projection.ts). */
  convProjections: number;
  /** Channel L2 norms it computes as a 1x1 Conv instead of a ReduceL2 (channel-norm-conv.ts). */
  convChannelNorms: number;
}

/** Largest |Δlogit| accepted between the two graphs, relative to the largest logit (float32 sums in another order). */
const TOLERANCE = 1e-4;

/**
 * The package's network with its LoRA branches folded into the weights (lora-fold.ts), and its
 * channel L2 norms and class projections as 1x1 Convs (channel-norm-conv.ts, einsum-projection.ts),
 * checked against the package graph before it is used: one frame with a rank-2 LoRA pair on every
 * target must give the same logits through both. Undefined, with a log line saying why, when the
 * graph cannot be folded or the check fails; the worker then feeds the package graph its LoRA
 * inputs as before.
 */
export async function loadFoldedGraph(
  pkg: ModelPackage,
  /** The package's model.onnx, as read from its file. */
  packageBytes: Uint8Array,
  packageSession: ort.InferenceSession,
  sessionOptions: ort.InferenceSession.SessionOptions,
  logger: Logger,
): Promise<FoldedGraph | undefined> {
  const normed = withConvChannelNorms(packageBytes);
  const projected = withConvProjections(normed.bytes);
  const result = foldLoraBranches(projected.bytes, pkg.manifest.lora.targets);
  if ('reason' in result) {
    logger.info({ model: pkg.manifest.name, reason: result.reason }, 'LoRA branches kept in the network (cannot fold them into its weights)');
    return undefined;
  }
  let session: ort.InferenceSession | undefined;
  let feeds: FoldedLoraFeeds | undefined;
  try {
    session = await ort.InferenceSession.create(result.folded.bytes, sessionOptions);
    feeds = await FoldedLoraFeeds.create(result.folded);
    const mismatch = await compareGraphs(pkg, packageSession, session, feeds, result.folded);
    if (mismatch === undefined) return { bytes: result.folded.bytes, session, feeds, convProjections: projected.rewritten, convChannelNorms: normed.rewritten };
    logger.warn({ model: pkg.manifest.name, mismatch }, 'LoRA branches kept in the network: the folded graph gave other logits');
  } catch (error) {
    logger.warn({ model: pkg.manifest.name, err: error }, 'LoRA branches kept in the network: the folded graph did not load or run');
  }
  await session?.release().catch(() => undefined);
  await feeds?.release().catch(() => undefined);
  return undefined;
}

/** Undefined when both graphs agree on a probe frame; otherwise what differed. */
async function compareGraphs(
  pkg: ModelPackage,
  packageSession: ort.InferenceSession,
  foldedSession: ort.InferenceSession,
  folded: FoldedLoraFeeds,
  model: FoldedLoraModel,
): Promise<string | undefined> {
  const { input, classes, classEmbeddings, output } = pkg.manifest;
  // Deterministic values in about the ranges the network sees (normalised pixels, small LoRA).
  const wave = (length: number, phase: number, scale: number) => Float32Array.from({ length }, (_, i) => scale * Math.sin(i * 0.7 + phase));
  // Folding does not depend on the frame size: a network that takes any size gets a small probe,
  // so that neither session's memory arena grows to a full frame's tensors at start-up (~37 MB
  // more RSS for the worker at models/default's 224x128).
  const side = input.fit ? Math.min(input.fit.maxSide, input.fit.stride * 4) : undefined;
  const [width, height] = side ? [side, side] : [input.width, input.height];
  const feeds: Record<string, ort.Tensor> = {
    [input.name]: new ort.Tensor('float32', wave(3 * width * height, 0, 2), [1, 3, height, width]),
    [classEmbeddings.input]: new ort.Tensor('float32', Float32Array.from(classes.flatMap((c) => c.embedding)), [classes.length, classEmbeddings.dim]),
  };
  const rank = 2;
  model.targets.forEach((target, t) => {
    feeds[target.inputA] = new ort.Tensor('float32', wave(rank * target.in, t, 0.05), [rank, target.in]);
    feeds[target.inputB] = new ort.Tensor('float32', wave(target.out * rank, t + 0.5, 0.05), [target.out, rank]);
  });
  const expected = (await packageSession.run(feeds, [output.name]))[output.name]!;
  const actual = (await foldedSession.run(await folded.convert(feeds), [output.name]))[output.name]!;
  if (expected.dims.join('x') !== actual.dims.join('x')) return `logits ${actual.dims.join('x')} instead of ${expected.dims.join('x')}`;
  const want = expected.data as Float32Array;
  const got = actual.data as Float32Array;
  let largest = 1;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    largest = Math.max(largest, Math.abs(want[i]!));
    worst = Math.max(worst, Math.abs(want[i]! - got[i]!));
  }
  return worst <= TOLERANCE * largest ? undefined : `largest |Δlogit| ${worst.toPrecision(3)} against logits up to ${largest.toPrecision(3)}`;
}
