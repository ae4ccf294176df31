import v8 from 'node:v8';

/**
 * V8 heap growth for a process that runs pipeline roles (set once, process-wide, before the
 * inference threads start):
 * - `--heap-growing-percent=200`: after a full collection the old generation may grow to three
 *   times what survived before the next one starts, rather than the ~1.7× V8 chose here (33 → 60 MB);
 * - `--initial-heap-size=64` (MB): isolates created from here on, the inference threads, start
 *   with that much room rather than a few MB.
 *
 * Why: with V8's defaults, `streamseg run` on 1200 640x360 frames made 53 full mark-compact
 * collections (32 on the main thread, whose live heap is ~33 MB; the rest in the ~10 MB inference
 * threads), each marking the whole heap on the CPU that inference and ffmpeg need; with these, 6.
 * Same run: 30.45+2.19 s of CPU against 31.94+1.97 s, peak RSS 480 against 467 MB. Each frame
 * churns ~1 MB of short-lived buffers (Redis commands and replies, logits), and V8's default
 * growth keeps the next limit close to those small live heaps; a script that only churns
 * ArrayBuffers does not reproduce the collections, so the effect is measured on the pipeline
 * itself (bench/README.md, fifth round).
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
