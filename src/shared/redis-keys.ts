/**
 * Redis key layout of one video. The `{videoId}` hash tag keeps a video's keys in one
 * Redis Cluster slot, so multi-key commands and MULTI work on managed clusters too.
 */
export function videoKeys(videoId: string) {
  const base = `ss:{${videoId}}`;
  return {
    /** Hash: probe facts, progress counters, status (see VideoState). */
    meta: `${base}:meta`,
    /** List of JSON scene starts, in order. */
    scenes: `${base}:scenes`,
    /** Raw RGB24 frame at source size, for the sink's overlay. */
    source: (index: number) => `${base}:src:${index}`,
    /** Raw RGB24 frame letterboxed to the model input size, for the workers. */
    input: (index: number) => `${base}:in:${index}`,
    /** uint8 class-index mask at model input size. */
    mask: (index: number) => `${base}:mask:${index}`,
    /** JSON frame result record (scene, timings, adapters). */
    result: (index: number) => `${base}:res:${index}`,
    /** List the workers push finished frame indices to, so the sink can block instead of poll. */
    ready: `${base}:ready`,
    /** Redis Stream of frame records for consumers. */
    stream: `${base}:frames`,
    /** Pattern matching every key of the video (cleanup). */
    pattern: `${base}:*`,
  };
}
export type VideoKeys = ReturnType<typeof videoKeys>;
