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

/**
 * Reusable batch buffers, one per job in flight (jobs of one worker may run concurrently, so
 * a single shared buffer would be overwritten mid-run). Buffers only grow, and a worker
 * keeps at most `concurrency` of them.
 */
export class BatchBufferPool {
  private readonly free: Float32Array[] = [];

  constructor(private readonly frameFloats: number) {}

  /** A view of exactly `frames` frames (ORT needs the data length to equal the shape). */
  acquire(frames: number): Float32Array {
    const needed = frames * this.frameFloats;
    const index = this.free.findIndex((b) => b.length >= needed);
    const buffer = index >= 0 ? this.free.splice(index, 1)[0]! : new Float32Array(needed);
    return buffer.length === needed ? buffer : buffer.subarray(0, needed);
  }

  release(view: Float32Array): void {
    // Return the whole underlying buffer, not the view.
    this.free.push(new Float32Array(view.buffer, 0, view.buffer.byteLength / Float32Array.BYTES_PER_ELEMENT));
  }
}
