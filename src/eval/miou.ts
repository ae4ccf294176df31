/** Confusion-matrix accumulation and mean IoU over class-index masks. */

/** Ground-truth value that is not scored (unlabelled pixels). */
export const IGNORE_INDEX = 255;

export class Confusion {
  /** counts[gt * classes + pred] */
  readonly counts: Float64Array;

  constructor(readonly classes: number) {
    this.counts = new Float64Array(classes * classes);
  }

  add(gt: Uint8Array, pred: Uint8Array): void {
    if (gt.length !== pred.length) throw new RangeError(`mask sizes differ: ${gt.length} vs ${pred.length}`);
    const k = this.classes;
    for (let i = 0; i < gt.length; i++) {
      const g = gt[i]!;
      if (g === IGNORE_INDEX || g >= k) continue;
      const p = pred[i]!;
      if (p >= k) continue;
      this.counts[g * k + p] = this.counts[g * k + p]! + 1;
    }
  }

  /** Adds another confusion's counts (a scene's into its cell's). */
  addCounts(other: Confusion): void {
    if (other.classes !== this.classes) throw new RangeError(`class counts differ: ${other.classes} vs ${this.classes}`);
    for (let i = 0; i < this.counts.length; i++) this.counts[i] = this.counts[i]! + other.counts[i]!;
  }

  /** IoU per class; NaN for a class absent from both ground truth and prediction. */
  iou(): number[] {
    const k = this.classes;
    return Array.from({ length: k }, (_, c) => {
      const tp = this.counts[c * k + c]!;
      let gt = 0;
      let pred = 0;
      for (let j = 0; j < k; j++) {
        gt += this.counts[c * k + j]!;
        pred += this.counts[j * k + c]!;
      }
      const union = gt + pred - tp;
      return union === 0 ? Number.NaN : tp / union;
    });
  }

  /** Mean IoU over the classes that occur (in ground truth or prediction). */
  miou(): number {
    const present = this.iou().filter((v) => !Number.isNaN(v));
    return present.length === 0 ? Number.NaN : present.reduce((a, b) => a + b, 0) / present.length;
  }
}
