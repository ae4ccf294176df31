export const LIVE_DROP_POLICIES = ['drop-oldest', 'keep-latest', 'every-nth'] as const;
export type LiveDropPolicyName = (typeof LIVE_DROP_POLICIES)[number];

export interface LiveDropPolicyOptions {
  policy: LiveDropPolicyName;
  /** Frames waiting for workers or the sink before the policy drops any. */
  maxInFlight: number;
  /** N of `every-nth`. @defaultValue 3 */
  every?: number;
}

/**
 * What to do with a frame that just arrived from a live source:
 * - `enqueue`: send it to the workers;
 * - `drop`: discard it;
 * - `evict-oldest`: discard the oldest frame still waiting for a worker (if one can still be
 *   taken back), then enqueue this one; if none can, drop this one instead;
 * - `hold`: keep it in the one-frame slot (what was there is dropped); it goes when there is room.
 */
export type LiveFrameDecision = 'enqueue' | 'drop' | 'evict-oldest' | 'hold';

/**
 * The live frame policy: pure, no I/O. The caller says how many frames are in flight (enqueued
 * and not yet emitted by the sink) and whether a frame is held; the policy decides. Nothing
 * ever waits: a camera cannot be paused, so when the workers fall behind frames are dropped
 * rather than queued, and the queue stays at most `maxInFlight` (+1 for `every-nth`) deep.
 */
export class LiveDropPolicy {
  readonly policy: LiveDropPolicyName;
  readonly maxInFlight: number;
  readonly every: number;
  private overloadedFrames = 0;

  constructor(options: LiveDropPolicyOptions) {
    if (!LIVE_DROP_POLICIES.includes(options.policy)) throw new RangeError(`policy must be one of ${LIVE_DROP_POLICIES.join(', ')}`);
    if (!(Number.isInteger(options.maxInFlight) && options.maxInFlight >= 1)) throw new RangeError('maxInFlight must be an integer of at least 1');
    const every = options.every ?? 3;
    if (!(Number.isInteger(every) && every >= 2)) throw new RangeError('every must be an integer of at least 2');
    this.policy = options.policy;
    this.maxInFlight = options.maxInFlight;
    this.every = every;
  }

  /** Whether a held frame (keep-latest) may go now. */
  mayRelease(inFlight: number): boolean {
    return inFlight < this.maxInFlight;
  }

  decide(inFlight: number): LiveFrameDecision {
    if (inFlight < this.maxInFlight) {
      this.overloadedFrames = 0;
      return 'enqueue';
    }
    switch (this.policy) {
      case 'drop-oldest':
        return 'evict-oldest';
      case 'keep-latest':
        return 'hold';
      case 'every-nth': {
        // Behind: one frame in N still goes, so the output keeps moving at a lower rate; twice
        // the limit is a hard stop (the workers cannot even keep 1/N).
        this.overloadedFrames++;
        if (inFlight >= 2 * this.maxInFlight) return 'drop';
        return this.overloadedFrames % this.every === 0 ? 'enqueue' : 'drop';
      }
    }
  }
}
