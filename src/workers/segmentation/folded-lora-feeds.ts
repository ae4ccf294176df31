import ort from 'onnxruntime-node';
import { weightFoldingModel, type FoldedLoraModel } from './lora-fold.js';

interface FoldedEntry {
  /** The LoRA tensors these weights were folded from, target by target (A, B, A, B…). */
  from: ort.Tensor[];
  weights: Promise<Record<string, ort.Tensor>>;
}

/**
 * Turns the feeds a LoraFeedProvider chooses (class embeddings and every target's LoRA A and B)
 * into the folded graph's feeds (the same class embeddings, and each target's W + B·A). Merged
 * adapters come from caches that hand out the same tensors for the same merge, so the folded
 * weights are kept by the identity of those tensors, for the last few merges (an inference
 * thread then keeps them too: see ThreadFeedLedger). The folding itself runs in a small ORT
 * session of its own (weightFoldingModel).
 */
export class FoldedLoraFeeds {
  private readonly entries = new Map<ort.Tensor, FoldedEntry>();
  private readonly baseWeights: Record<string, ort.Tensor>;
  private readonly loraInputs: Set<string>;

  private constructor(
    private readonly model: FoldedLoraModel,
    private readonly folder: ort.InferenceSession,
    private readonly capacity: number,
  ) {
    this.baseWeights = Object.fromEntries(model.targets.map((target) => [target.weightInput, new ort.Tensor('float32', target.base, target.dims)]));
    this.loraInputs = new Set(model.targets.flatMap((t) => [t.inputA, t.inputB]));
  }

  /**
   * @param capacity merges whose folded weights are kept (each the size of the targets'
   *   weights: 1.2 MB for models/default): the base model, the scenes being segmented, and one
   *   to spare. A merge is rarely met again once its scene is over. @defaultValue 4
   */
  static async create(model: FoldedLoraModel, capacity = 4): Promise<FoldedLoraFeeds> {
    // One thread without spinning: a fold is a few small GEMMs, once per merge.
    const folder = await ort.InferenceSession.create(weightFoldingModel(model.targets), {
      intraOpNumThreads: 1,
      executionProviders: ['cpu'],
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    return new FoldedLoraFeeds(model, folder, capacity);
  }

  /** The folded graph's feeds for `feeds`; anything that is not a target's A or B passes through. */
  async convert(feeds: Readonly<Record<string, ort.Tensor>>): Promise<Record<string, ort.Tensor>> {
    const out: Record<string, ort.Tensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) if (!this.loraInputs.has(name)) out[name] = tensor;
    return Object.assign(out, await this.weightsFor(feeds));
  }

  release(): Promise<void> {
    return this.folder.release();
  }

  private weightsFor(feeds: Readonly<Record<string, ort.Tensor>>): Promise<Record<string, ort.Tensor>> {
    const from = this.model.targets.flatMap((t) => [pairTensor(feeds, t.inputA), pairTensor(feeds, t.inputB)]);
    const key = from[0]!;
    const cached = this.entries.get(key);
    if (cached && cached.from.every((tensor, i) => tensor === from[i])) {
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached.weights;
    }
    // The base model's feeds (rank-1 zeros) fold to W itself: no copy.
    const weights = from.every((tensor, i) => i % 2 === 0 || isZero(tensor)) ? Promise.resolve(this.baseWeights) : this.fold(from);
    this.entries.set(key, { from, weights });
    // A failed fold is not kept: the next batch tries again.
    weights.catch(() => this.entries.get(key)?.weights === weights && this.entries.delete(key));
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return weights;
  }

  private async fold(from: readonly ort.Tensor[]): Promise<Record<string, ort.Tensor>> {
    const inputs: Record<string, ort.Tensor> = {};
    this.model.targets.forEach((_, k) => {
      inputs[`a${k}`] = from[2 * k]!;
      inputs[`b${k}`] = from[2 * k + 1]!;
    });
    const results = await this.folder.run(inputs);
    const weights: Record<string, ort.Tensor> = {};
    this.model.targets.forEach((target, k) => {
      weights[target.weightInput] = new ort.Tensor('float32', results[`folded${k}`]!.data as Float32Array, target.dims);
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
