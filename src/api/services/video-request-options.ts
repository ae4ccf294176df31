import { createHash } from 'node:crypto';
import { z } from 'zod';
import { videoOptionsFromFlags } from '../../shared/video-options.js';
import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import { liveOptionsSchema, type LiveOptions } from '../../shared/job-schemas.js';
import type { ModelManifest } from '../../shared/model-manifest.js';
import { assertClassesInModel } from '../../shared/video-classes.js';
import { MERGE_METHODS, type RetrievalOverrides } from '../../shared/retrieval-options.js';

/** A JSON number, or a decimal string (multipart): no arrays, booleans, hex or exponents through coercion. */
const strictNumber = z.union([
  z.number(),
  z
    .string()
    .regex(/^\d{1,6}(\.\d{1,6})?$/, 'must be a decimal number')
    .transform(Number),
]);
const booleanish = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');

/**
 * A submission's options, as JSON fields or multipart fields (strings): the same choices as
 * `streamseg submit` flags (--fps, --classes, --top-k, --merge, --no-adapters).
 */
export const videoRequestOptionsSchema = z
  .object({
    /** Resample to this frame rate; unset keeps the source rate. */
    fps: strictNumber.pipe(z.number().min(0.1).max(240)).optional(),
    /** Class names to segment: an array, or a comma-separated string. */
    classes: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).optional(),
    /** Most adapters merged per scene. */
    topK: strictNumber.pipe(z.number().int().min(1).max(32)).optional(),
    /** How retrieved adapters are merged. */
    merge: z.enum(MERGE_METHODS).optional(),
    /** false: the base model only, no adapter retrieval. @defaultValue true */
    adapters: booleanish.optional(),
    /** false: annotated.mp4 without the input's audio (`--no-audio`). @defaultValue true */
    audio: booleanish.optional(),
    /** Live source settings (rtsp/udp/HLS URLs are live without them); a JSON string in multipart. */
    live: z.preprocess((v) => (typeof v === 'string' ? parseJson(v) : v), liveOptionsSchema).optional(),
  })
  .strict();
export type VideoRequestOptions = z.input<typeof videoRequestOptionsSchema>;

/** The options a video is submitted with (what VideoSubmitter takes besides input and outDir). */
export interface ResolvedVideoOptions {
  fps?: number;
  live?: LiveOptions;
  classes?: string[];
  retrieval?: RetrievalOverrides;
  /** false: annotated.mp4 without the input's audio. */
  audio?: false;
}

/**
 * Parses a submission's options; with the model's manifest, classes it does not know are refused
 * (400) before the video is accepted.
 */
export function resolveVideoOptions(raw: unknown, manifest?: ModelManifest): ResolvedVideoOptions {
  const parsed = videoRequestOptionsSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new HttpError(
      400,
      ErrorCode.BAD_REQUEST,
      `invalid options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  const { fps, classes, topK, merge, adapters, live, audio } = parsed.data;
  // The CLI's flag mapping, so --no-adapters and adapters=false mean exactly the same.
  const resolved = videoOptionsFromFlags({
    classes: Array.isArray(classes) ? classes.join(',') : classes,
    topK: topK === undefined ? undefined : String(topK),
    merge,
    adapters: adapters ?? true,
    audio: audio ?? true,
  });
  if (manifest) assertClassesInModel(resolved.classes, manifest, 'classes');
  return { ...(fps === undefined ? {} : { fps }), ...resolved, ...(live ? { live } : {}) };
}

/** Hash of what makes two submissions the same: the source (upload bytes or URL) and the options. */
export function submissionHash(source: { upload: string } | { url: string }, options: ResolvedVideoOptions): string {
  const canonical = {
    source,
    fps: options.fps ?? null,
    classes: options.classes ? [...options.classes].sort() : null,
    retrieval: options.retrieval ? Object.fromEntries(Object.entries(options.retrieval).sort(([a], [b]) => (a < b ? -1 : 1))) : null,
    live: options.live ? Object.fromEntries(Object.entries(options.live).sort(([a], [b]) => (a < b ? -1 : 1))) : null,
    // Only when set, so the hash of every submission that keeps its audio stays what it was.
    ...(options.audio === false ? { audio: false } : {}),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
