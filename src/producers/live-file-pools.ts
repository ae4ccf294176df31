/**
 * A producer's two pools: files (bounded work, they wait here for a slot) and live sources
 * (they run until stopped: one beyond the pool goes back to the queue rather than wait, so a
 * backlog of live videos can never hold the slots files need).
 */
export class LiveFilePools {
  private liveRunning = 0;
  private filesRunning = 0;
  private readonly fileWaiters: (() => void)[] = [];

  constructor(
    readonly fileSlots: number,
    readonly liveSlots: number,
  ) {
    if (!(fileSlots >= 1 && liveSlots >= 1)) throw new RangeError('fileSlots and liveSlots must be at least 1');
  }

  /** Jobs the queue worker may hold at once: every slot of both pools. */
  get total(): number {
    return this.fileSlots + this.liveSlots;
  }

  /** Takes a live slot; false when all are busy (the caller puts the job back). */
  tryTakeLive(): boolean {
    if (this.liveRunning >= this.liveSlots) return false;
    this.liveRunning++;
    return true;
  }

  releaseLive(): void {
    this.liveRunning = Math.max(0, this.liveRunning - 1);
  }

  /** Waits for a file slot; rejects with the signal's reason when it aborts first. */
  takeFile(signal?: AbortSignal): Promise<void> {
    if (this.filesRunning < this.fileSlots) {
      this.filesRunning++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        this.filesRunning++;
        resolve();
      };
      const onAbort = () => {
        const at = this.fileWaiters.indexOf(grant);
        if (at >= 0) this.fileWaiters.splice(at, 1);
        reject(signal?.reason);
      };
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.fileWaiters.push(grant);
    });
  }

  releaseFile(): void {
    this.filesRunning = Math.max(0, this.filesRunning - 1);
    const next = this.fileWaiters.shift();
    if (next) next();
  }
}
