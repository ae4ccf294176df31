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
    /** Raw RGB24 frame resized to the video's model input (planModelInput), for the workers. */
    input: (index: number) => `${base}:in:${index}`,
    /** uint8 class-index mask at model input size. */
    mask: (index: number) => `${base}:mask:${index}`,
    /** JSON frame result record (scene, timings, adapters). */
    result: (index: number) => `${base}:res:${index}`,
    /** List the workers push finished frame indices to, so the sink can block instead of poll. */
    ready: `${base}:ready`,
    /** String `kept` | `base`: the confidence guard's decision for a scene (first writer wins). */
    guard: (scene: number) => `${base}:guard:${scene}`,
    /** Redis Stream of frame records for consumers. */
    stream: `${base}:frames`,
    /** Index of the last record appended to `stream`: makes a retried append a no-op. */
    streamLast: `${base}:frames:last`,
    /** String: the dedup key (`dedupKey`) this video was submitted under, so a cancel can free it. */
    dedup: `${base}:dedup`,
    /** Pattern matching every key of the video (cleanup). */
    pattern: `${base}:*`,
  };
}
export type VideoKeys = ReturnType<typeof videoKeys>;

/** Sorted set of every submitted video id, scored by submission time (ms); listing prunes expired ones. */
export const VIDEO_INDEX_KEY = 'ss:videos';

/**
 * A cancelled video's tombstone (JSON `{ cancelledAt }`): producers stop decoding when it
 * exists. Outside the video's key pattern on purpose, so cleaning the video's keys keeps it
 * (same hash slot through the `{videoId}` tag); it expires with the frame TTL.
 */
export function cancelledKey(videoId: string): string {
  return `ss:cancelled:{${videoId}}`;
}

/** A submission's content hash (upload bytes or URL, plus options) → video id, for the dedup window. */
export function dedupKey(submissionHash: string): string {
  return `ss:dedup:${submissionHash}`;
}

/** JSON metrics snapshot of one process (prom-client `getMetricsAsJSON`), for the API's aggregated /metrics. */
export const METRICS_SNAPSHOT_PREFIX = 'ss:metrics:';
