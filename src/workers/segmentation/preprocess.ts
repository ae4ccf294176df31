import type { ModelManifest } from '../../shared/model-manifest.js';

/**
 * RGB24 HWC bytes (letterboxed to the model size by the producer) → float32 NCHW,
 * (pixel/255 − mean)/std per channel, written into a caller-owned batch buffer.
 * A 256-entry table per channel replaces the arithmetic: one lookup per byte, with exactly
 * the value the formula gives (computed in float64, rounded once to float32).
 */
export class Preprocessor {
  readonly width: number;
  readonly height: number;
  /** Bytes of one input frame: width × height × 3. */
  readonly frameBytes: number;
  /** Floats of one frame in the batch: 3 × height × width. */
  readonly frameFloats: number;
  private readonly tables: [Float32Array, Float32Array, Float32Array];

  constructor(input: Pick<ModelManifest['input'], 'width' | 'height' | 'mean' | 'std'>) {
    this.width = input.width;
    this.height = input.height;
    this.frameBytes = input.width * input.height * 3;
    this.frameFloats = this.frameBytes;
    const table = (c: 0 | 1 | 2) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - input.mean[c]) / input.std[c]);
    this.tables = [table(0), table(1), table(2)];
  }

  /** Writes one frame into slot `slot` of `batch` ([N,3,H,W]). */
  write(rgb: Uint8Array, batch: Float32Array, slot: number): void {
    if (rgb.length !== this.frameBytes) {
      throw new RangeError(`input frame has ${rgb.length} bytes, model input ${this.width}x${this.height} RGB needs ${this.frameBytes}`);
    }
    const plane = this.width * this.height;
    const base = slot * this.frameFloats;
    const [r, g, b] = this.tables;
    let o0 = base;
    let o1 = base + plane;
    let o2 = base + 2 * plane;
    for (let i = 0; i < rgb.length; i += 3) {
      batch[o0++] = r[rgb[i]!]!;
      batch[o1++] = g[rgb[i + 1]!]!;
      batch[o2++] = b[rgb[i + 2]!]!;
    }
  }
}
