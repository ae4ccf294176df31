/**
 * A file's source frames handed from the producer to the sink of the same process, in memory.
 *
 * For a file input the sink needs every source frame again for annotated.mp4. Through Redis
 * that is 345 kB more per 640x360 frame held there; decoding the file a second time in the sink
 * costs a whole H.264 decode (about 2.6 ms of CPU per 640x360 frame, a tenth of the pipeline's).
 * When both roles run in one process (`streamseg run`), the producer's one ffmpeg writes the
 * source-size frame beside the model input (`rawDecodeArgs`' `sourceOutput`) and puts it here;
 * the sink takes it. Nothing else changes: the frames jobs, the results and the checkpoints still
 * go through Redis, and the sink job still says how to decode the file, so a sink elsewhere, a
 * resumed one, or any frame the handoff lacks falls back to the sink's own decode.
 *
 * Memory is bounded by one budget for the whole process. A producer whose sink is taking
 * frames waits for room; one whose sink has not come (it is busy with another video, or a sink
 * in another process took the job) gives its handoff up instead, and that sink decodes itself.
 */

/** Fewer frames than this in the budget and the producer would wait on every frame: no handoff. */
const MIN_FRAMES_IN_BUDGET = 8;

/** The handoffs of one process, under one budget of bytes. */
export class SourceFrameHandoffs {
  /** Bytes of frames held: waiting for the sink, or lent to it. */
  private heldBytes = 0;
  private readonly handoffs = new Map<string, SourceFrameHandoff>();
  private readonly waiting = new Set<() => void>();

  /** @param budgetBytes frames held at once by all handoffs (STREAMSEG_SOURCE_HANDOFF_BYTES) */
  constructor(readonly budgetBytes: number) {}

  /**
   * Producer: a handoff for this video's frames of `frameBytes`, or none when the budget holds
   * fewer than MIN_FRAMES_IN_BUDGET of them, or when the video has one already (a decode run
   * again: its sink may be past frames this run would not put back, so it decodes itself).
   */
  open(videoId: string, frameBytes: number): SourceFrameHandoff | undefined {
    const existing = this.handoffs.get(videoId);
    if (existing) {
      existing.abandon();
      return undefined;
    }
    if (frameBytes * MIN_FRAMES_IN_BUDGET > this.budgetBytes) return undefined;
    // A decoded video no sink here came for is being assembled elsewhere: free its frames.
    for (const handoff of this.handoffs.values()) if (handoff.unclaimed) handoff.abandon();
    const handoff = new SourceFrameHandoff(this, videoId, frameBytes);
    this.handoffs.set(videoId, handoff);
    return handoff;
  }

  /** Sink: this video's handoff, now claimed by the caller; none: decode the file yourself. */
  claim(videoId: string): SourceFrameHandoff | undefined {
    const handoff = this.handoffs.get(videoId);
    return handoff?.claim() ? handoff : undefined;
  }

  /** Bytes of frames held now, by every handoff. */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** @internal */
  fits(bytes: number): boolean {
    return this.heldBytes + bytes <= this.budgetBytes;
  }

  /** @internal */
  hold(bytes: number): void {
    this.heldBytes += bytes;
  }

  /** @internal Frees bytes and wakes every producer waiting for room. */
  free(bytes: number): void {
    this.heldBytes -= bytes;
    // Called for every frame the sink gives back; a producer is rarely waiting.
    if (this.waiting.size === 0) return;
    const waiting = [...this.waiting];
    this.waiting.clear();
    waiting.forEach((wake) => wake());
  }

  /** @internal Resolves at the next `free`; rejects with the signal's reason. */
  nextFree(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      signal?.throwIfAborted();
      const onAbort = () => {
        this.waiting.delete(wake);
        reject(signal!.reason);
      };
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiting.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** @internal */
  remove(handoff: SourceFrameHandoff): void {
    if (this.handoffs.get(handoff.videoId) === handoff) this.handoffs.delete(handoff.videoId);
  }
}

/** One video's frames on their way from the producer to the sink. */
export class SourceFrameHandoff {
  private readonly frames = new Map<number, Buffer>();
  /** Buffers the sink gave back, filled again by the next frames. */
  private readonly spare: Buffer[] = [];
  private claimed = false;
  private decoded = false;
  private abandoned = false;

  constructor(
    private readonly owner: SourceFrameHandoffs,
    readonly videoId: string,
    readonly frameBytes: number,
  ) {}

  /** Whether the producer finished and no sink took the frames. */
  get unclaimed(): boolean {
    return this.decoded && !this.claimed;
  }

  /**
   * Producer: keeps a copy of frame `index`. While the budget is spent and the sink is taking
   * frames, runs `beforeWait` (hand the frames decoded so far to the workers, or the sink would
   * wait for them) and waits for room. Returns false once the handoff is given up: no sink came
   * for the frames, or it stopped; the sink decodes the file itself then.
   */
  async put(index: number, frame: Uint8Array, beforeWait: () => Promise<void>, signal?: AbortSignal): Promise<boolean> {
    while (!this.abandoned && !this.owner.fits(this.frameBytes)) {
      if (!this.claimed) {
        this.abandon();
        break;
      }
      await beforeWait();
      if (!this.owner.fits(this.frameBytes)) await this.owner.nextFree(signal);
    }
    if (this.abandoned) return false;
    const buffer = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.frameBytes);
    buffer.set(frame);
    this.frames.set(index, buffer);
    this.owner.hold(this.frameBytes);
    return true;
  }

  /** Producer: every frame is in. */
  finishDecode(): void {
    this.decoded = true;
  }

  /**
   * Sink: frame `index`, lent until handed back with `giveBack`; earlier frames are dropped.
   * None when it is not here (the handoff was given up, or the frame was never put): the sink
   * decodes the file itself from there.
   */
  take(index: number): Buffer | undefined {
    if (this.abandoned) return undefined;
    for (const [held, buffer] of this.frames) {
      if (held >= index) break;
      this.frames.delete(held);
      this.giveBack(buffer);
    }
    const buffer = this.frames.get(index);
    this.frames.delete(index);
    return buffer;
  }

  /** Sink: a frame from `take` is no longer used. */
  giveBack(buffer: Buffer): void {
    if (!this.abandoned) this.spare.push(buffer);
    this.owner.free(this.frameBytes);
  }

  /** Gives the handoff up: its frames are freed, `put` and `take` find nothing from now on. Idempotent. */
  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    const held = this.frames.size;
    this.frames.clear();
    this.spare.length = 0;
    this.owner.remove(this);
    this.owner.free(held * this.frameBytes);
  }

  /** @internal The sink's claim: once, and only before the handoff is given up. */
  claim(): boolean {
    if (this.abandoned || this.claimed) return false;
    this.claimed = true;
    return true;
  }
}
