import v8 from 'node:v8';

/**
 * V8 heap growth for a process that runs pipeline roles (set once, process-wide, before the
 * inference threads start):
 * - `--heap-growing-percent=200`: after a full collection the old generation may grow to three
 *   times what survived before the next one starts, rather than V8's ~1.5-2×;
 * - `--initial-heap-size=64` (MB): isolates created from here on, the inference threads, start
 *   with that much room rather than a few MB.
 *
 * Why: every frame allocates ~1 MB of short-lived ArrayBuffers (Redis replies and commands,
 * ORT's logits in the inference threads), and V8 counts them against a limit derived from the
 * small live heap (~33 MB on the main thread, ~10 MB in an inference thread). With the
 * defaults, `streamseg run` on 1200 640x360 frames made 53 full mark-compact collections (32 on
 * the main thread), each marking the whole heap on the CPU that inference and ffmpeg need; with
 * these, 6. Same run: 30.45+2.19 s of CPU against 31.94+1.97 s, peak RSS 480 against 467 MB.
 * Set at run time (no node command-line flag needed, so `npx streamseg` and the bench get it):
 * both flags are read each time V8 computes a limit or creates an isolate.
 */
export const PIPELINE_HEAP_FLAGS = ['--heap-growing-percent=200', '--initial-heap-size=64'] as const;

let applied = false;

export function tunePipelineHeap(): void {
  if (applied) return;
  applied = true;
  for (const flag of PIPELINE_HEAP_FLAGS) v8.setFlagsFromString(flag);
}
