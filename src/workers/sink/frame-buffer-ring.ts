/**
 * A few frame buffers the sink annotates into, reused in turn: one fresh 691 KB buffer per
 * 640x360 frame was, with the other large per-frame buffers, what made V8 run a full mark-compact
 * every few frames (`node --trace-gc`). A buffer comes back once the encoder has flushed it.
 */
export class FrameBufferRing {
  private readonly buffers: Buffer[];
  private readonly flushed: Promise<void>[];
  private turn = 0;

  constructor(frameBytes: number, size = 3) {
    this.buffers = Array.from({ length: size }, () => Buffer.allocUnsafe(frameBytes));
    this.flushed = this.buffers.map(() => Promise.resolve());
  }

  /** The next buffer, once its last frame has been flushed, and the callback to call when this one is. */
  async acquire(): Promise<{ buffer: Buffer; release: () => void }> {
    const slot = this.turn;
    this.turn = (this.turn + 1) % this.buffers.length;
    await this.flushed[slot];
    let release!: () => void;
    this.flushed[slot] = new Promise<void>((resolve) => (release = resolve));
    return { buffer: this.buffers[slot]!, release };
  }
}
