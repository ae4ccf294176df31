/**
 * Every Redis key streamseg writes (BullMQ's own keys aside: queues.ts names the queues and
 * their prefix). One place, so a new key cannot escape the clean-up pattern or the hash tag.
 */

/**
 * Redis key layout of one video. The `{videoId}` hash tag keeps a video's keys in one
 * Redis Cluster slot, so multi-key commands and MULTI work on managed clusters too; every key
 * matches `pattern`, so deleting the video (cancel, clean-up) removes them all.
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
    /** Hash `checkpoint` (JSON SinkCheckpoint) and `owner` (the sink that holds the video). */
    sinkCheckpoint: `${base}:sink`,
    /** float32 LE: a scene's embedding, computed once by one worker for all. */
    sceneEmbedding: (scene: number) => `${base}:emb:${scene}`,
    /** String: the token of the worker computing a scene's embedding (SET NX PX). */
    sceneEmbeddingLock: (scene: number) => `${base}:emb:${scene}:lock`,
    /** String: the id of the API token that submitted the video. */
    owner: `${base}:owner`,
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

/** Redis keys of a live video, beside the other keys of the video (same hash tag, same clean-up pattern). */
export function liveKeys(videoId: string) {
  const base = `ss:{${videoId}}:live`;
  return {
    /** Hash: frame index → capture time (ms since the epoch) of frames not yet emitted. */
    capture: `${base}:capture`,
    /** Sorted set (score = index) of frames the producer dropped and the sink has not passed yet. */
    dropped: `${base}:dropped`,
    /** String: `streamseg stop` asked the live video to end (the producer finishes it gracefully). */
    stop: `${base}:stop`,
    /** JSON: the live outputs the submitter asked for (restream URL), for the sink. */
    outputs: `${base}:outputs`,
  };
}

/** Redis keys of the run-time adapter registry; the `{adapters}` hash tag keeps them in one cluster slot. */
export const ADAPTER_REGISTRY_KEYS = {
  /** Hash: adapter name → JSON RuntimeAdapterRecord. */
  registry: 'ss:{adapters}:registry',
  /** Counter bumped on every change; workers compare it to reload. */
  version: 'ss:{adapters}:version',
  /** Pub/sub channel announcing a change (the message is the new version). */
  channel: 'ss:{adapters}:changed',
  /** Hash with fields `config` and `weights`: the adapter's files, by content version. */
  files: (name: string, version: string) => `ss:{adapters}:files:${name}:${version}`,
} as const;

/** Keys of one API token's usage, by its non-secret id (api-tokens.ts tokenId). */
export function tokenKeys(tokenId: string) {
  return {
    /** Set: ids of the token's videos not known to be finished. */
    active: `ss:token:{${tokenId}}:active`,
    /** Sorted set: submission times (ms) within the last minute, member = `<ms>-<random>`. */
    recent: `ss:token:{${tokenId}}:recent`,
  };
}

/** JSON metrics snapshot of one process (prom-client `getMetricsAsJSON`), for the API's aggregated /metrics. */
export const METRICS_SNAPSHOT_PREFIX = 'ss:metrics:';
