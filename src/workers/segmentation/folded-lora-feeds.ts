import ort from 'onnxruntime-node';
import { foldLoraWeights, type FoldedLoraModel } from './lora-fold.js';

interface FoldedEntry {
  /** The LoRA tensors these weights were folded from, target by target (A, B, A, B…). */
  from: ort.Tensor[];
  weights: Record<string, ort.Tensor>;
}

/**
 * Turns the feeds a LoraFeedProvider chooses (class embeddings and every target's LoRA A and B)
 * into the folded graph's feeds (the same class embeddings, and each target's W + B·A). Merged
 * adapters come from caches that hand out the same tensors for the same merge, so the folded
 * weights are kept by the identity of those tensors, for the last few merges (an inference
 * thread then keeps them too: see ThreadFeedLedger).
 */
export class FoldedLoraFeeds {
  private readonly entries = new Map<ort.Tensor, FoldedEntry>();
  private readonly baseWeights: Record<string, ort.Tensor>;

  /**
   * @param capacity merges whose folded weights are kept (each the size of the targets'
   *   weights: 1.2 MB for models/default): the base model, the scenes being segmented, and one
   *   to spare. A merge is rarely met again once its scene is over. @defaultValue 4
   */
  constructor(
    private readonly model: FoldedLoraModel,
    private readonly capacity = 4,
  ) {
    this.baseWeights = Object.fromEntries(model.targets.map((target) => [target.weightInput, new ort.Tensor('float32', target.base, target.dims)]));
  }

  /** The folded graph's feeds for `feeds`; anything that is not a target's A or B passes through. */
  convert(feeds: Readonly<Record<string, ort.Tensor>>): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    const lora = new Set(this.model.targets.flatMap((t) => [t.inputA, t.inputB]));
    for (const [name, tensor] of Object.entries(feeds)) if (!lora.has(name)) out[name] = tensor;
    return Object.assign(out, this.weightsFor(feeds));
  }

  private weightsFor(feeds: Readonly<Record<string, ort.Tensor>>): Record<string, ort.Tensor> {
    const from = this.model.targets.flatMap((t) => [pairTensor(feeds, t.inputA), pairTensor(feeds, t.inputB)]);
    const key = from[0]!;
    const cached = this.entries.get(key);
    if (cached && cached.from.every((tensor, i) => tensor === from[i])) {
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached.weights;
    }
    // The base model's feeds (rank-1 zeros) fold to W itself: no copy.
    const weights = from.every((tensor, i) => i % 2 === 0 || isZero(tensor)) ? this.baseWeights : this.fold(from);
    this.entries.set(key, { from, weights });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return weights;
  }

  private fold(from: readonly ort.Tensor[]): Record<string, ort.Tensor> {
    const weights: Record<string, ort.Tensor> = {};
    this.model.targets.forEach((target, t) => {
      const A = from[2 * t]!;
      const B = from[2 * t + 1]!;
      const rank = A.dims[0] ?? 0;
      const into = new Float32Array(target.base.length);
      weights[target.weightInput] = new ort.Tensor('float32', foldLoraWeights(target, A.data as Float32Array, B.data as Float32Array, rank, into), target.dims);
    });
    return weights;
  }
}

function pairTensor(feeds: Readonly<Record<string, ort.Tensor>>, name: string): ort.Tensor {
  const tensor = feeds[name];
  if (!tensor || tensor.type !== 'float32') throw new RangeError(`no float32 feed "${name}" to fold into the network's weights`);
  return tensor;
}

function isZero(tensor: ort.Tensor): boolean {
  return (tensor.data as Float32Array).every((value) => value === 0);
}
