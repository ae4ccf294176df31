import { writeStill, type StillMeta, type StillSpec } from './still.js';

/** PNG encodes and writes in flight per thread while the next still renders. */
const WRITES_IN_FLIGHT = 6;

/**
 * Renders and writes stills on the current thread. Rendering is synchronous CPU
 * work; sharp encodes on libuv's pool, so up to WRITES_IN_FLIGHT encodes overlap the
 * next render instead of waiting for it.
 */
export async function writeStillBatch(dir: string, specs: readonly StillSpec[], onDone: (meta: StillMeta) => void): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (const spec of specs) {
    while (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
    const p: Promise<void> = writeStill(dir, spec).then((meta) => {
      inFlight.delete(p);
      onDone(meta);
    });
    inFlight.add(p);
    // Let finished encodes report before the next synchronous render blocks the thread.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await Promise.all(inFlight);
}
