import type ort from 'onnxruntime-node';
import type { WireTensor } from './onnx-session.thread.js';

/** One id per tensor object, shared by every ledger: the same tensor is the same feed everywhere. */
const tensorIds = new WeakMap<ort.Tensor, number>();
let nextTensorId = 1;

function idOf(tensor: ort.Tensor): number {
  let id = tensorIds.get(tensor);
  if (id === undefined) tensorIds.set(tensor, (id = nextTensorId++));
  return id;
}

/**
 * Which feed tensors an inference thread keeps, so that each crosses to it once instead of with
 * every run: the folded weights of a merge are 1.2 MB on models/default, and a scene runs many
 * batches with the same ones. Feeds are told apart by tensor identity (caches hand out the same
 * tensor for the same merge); the ledger decides what the thread forgets, least recently used
 * first, so both sides agree without asking.
 */
export class ThreadFeedLedger {
  /** Ids the thread holds, with their bytes, least recently used first. */
  private readonly kept = new Map<number, number>();
  private keptBytes = 0;

  /**
   * @param budgetBytes what the thread may keep beyond the feeds of the run at hand: the merges
   *   FoldedLoraFeeds keeps for models/default (1.2 MB each); a larger network's merge is sent
   *   again when the scene changes, a small cost next to its runs. @defaultValue 8 MiB
   */
  constructor(private readonly budgetBytes = 8 * 2 ** 20) {}

  /** The wire form of `feeds`, and the ids the thread is to drop before taking them. */
  wire(feeds: Readonly<Record<string, ort.Tensor>>): { feeds: Record<string, WireTensor>; forget: number[] } {
    const wire: Record<string, WireTensor> = {};
    const inRun = new Set<number>();
    for (const [name, tensor] of Object.entries(feeds)) {
      const id = idOf(tensor);
      inRun.add(id);
      const bytes = this.kept.get(id);
      if (bytes !== undefined) {
        this.kept.delete(id);
        this.kept.set(id, bytes);
        wire[name] = { id };
      } else {
        const data = tensor.data as Float32Array;
        this.kept.set(id, data.byteLength);
        this.keptBytes += data.byteLength;
        wire[name] = { id, data, dims: tensor.dims };
      }
    }
    const forget: number[] = [];
    for (const [id, bytes] of this.kept) {
      if (this.keptBytes <= this.budgetBytes) break;
      if (inRun.has(id)) continue;
      this.kept.delete(id);
      this.keptBytes -= bytes;
      forget.push(id);
    }
    return { feeds: wire, forget };
  }
}
