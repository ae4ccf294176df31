import { z } from 'zod';
import { JobPayloadError } from './errors/index.js';
import { retrievalOverridesSchema } from './retrieval-options.js';

/** Ids appear in Redis keys and file names: no separators, no traversal. */
export const videoIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1-64 letters, digits, "_" or "-", starting with a letter or digit');

export const videoInputSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), path: z.string().min(1) }),
  z.object({
    kind: z.literal('url'),
    url: z
      .string()
      .url()
      .refine((u) => /^(https?|rtsp|udp):\/\//i.test(u), 'only http, https, rtsp and udp URLs are accepted'),
    /**
     * Submitted through the API: the producer checks the destination policy (STREAMSEG_URL_ALLOW)
     * again before it connects, and every HTTP(S) connection ffmpeg makes for it (redirects,
     * playlist segments) goes through the policy's egress proxy.
     */
    restricted: z.boolean().optional(),
  }),
]);
export type VideoInput = z.infer<typeof videoInputSchema>;

/**
 * How a live source is read and what its live outputs are. A video is live when its options
 * carry this object, or when its input is an rtsp/udp URL or an HLS playlist (`.m3u8`).
 */
export const liveOptionsSchema = z.object({
  /** RTSP lower transport when connecting to a server. @defaultValue `tcp` */
  rtspTransport: z.enum(['tcp', 'udp']).optional(),
  /** RTSP: wait for a publisher (ANNOUNCE/RECORD) on the URL's address instead of connecting to a server. */
  listen: z.boolean().optional(),
  /** The first clean end of stream ends the video (stdin, finite streams); otherwise the source is reopened. @defaultValue true for HLS, false otherwise */
  endOnEof: z.boolean().optional(),
  /** Read the input no faster than its own frame rate (a file piped to stdin then behaves like a camera). */
  nativeRate: z.boolean().optional(),
  /** Also send the annotated stream here (rtsp:// publishes to a server, udp:// sends MPEG-TS). */
  restreamUrl: z
    .string()
    .url()
    .refine((u) => /^(rtsp|udp):\/\//i.test(u) && !/[|[\]\\]/.test(u), 'must be an rtsp:// or udp:// URL without | [ ] or \\')
    .optional(),
});
export type LiveOptions = z.infer<typeof liveOptionsSchema>;

export const videoOptionsSchema = z.object({
  /** Output frame rate; unset keeps the source rate. */
  fps: z.number().min(0.1).max(240).optional(),
  /** Directory the sink writes annotated.mp4, masks.ndjson and report.json into. */
  outDir: z.string().min(1),
  /** Restrict the vocabulary to these class names (model default: all). */
  classes: z.array(z.string().min(1)).min(1).optional(),
  /** Adapter retrieval/merge overrides for this video (over the workers' defaults). */
  retrieval: retrievalOverridesSchema.optional(),
  /** Live source settings; see liveOptionsSchema. */
  live: liveOptionsSchema.optional(),
  /** false: annotated.mp4 leaves out the input's audio (`--no-audio`). Live outputs are video-only anyway. @defaultValue true */
  audio: z.boolean().optional(),
});
export type VideoOptions = z.infer<typeof videoOptionsSchema>;

export const decodeVideoJobSchema = z.object({
  videoId: videoIdSchema,
  input: videoInputSchema,
  options: videoOptionsSchema,
  submittedAt: z.number().int().nonnegative(),
});
export type DecodeVideoJob = z.infer<typeof decodeVideoJobSchema>;

export const frameRefSchema = z.object({
  index: z.number().int().nonnegative(),
  /** Presentation time in milliseconds from the start of the video. */
  timestampMs: z.number().nonnegative(),
});
export type FrameRef = z.infer<typeof frameRefSchema>;

export const segmentFramesJobSchema = z.object({
  videoId: videoIdSchema,
  scene: z.number().int().nonnegative(),
  /** First frame index of the scene: the frames the scene embedding is computed from start here. */
  sceneStartFrame: z.number().int().nonnegative(),
  frames: z.array(frameRefSchema).min(1).max(256),
  /** Size of the frames' model inputs (planModelInput of the video); absent: the manifest's input size. */
  input: z.object({ width: z.number().int().min(8).max(4096), height: z.number().int().min(8).max(4096) }).optional(),
  /** The job's vocabulary (class names of the model); unset = every class of the model. */
  classes: z.array(z.string().min(1)).min(1).optional(),
  /** The video's adapter retrieval/merge overrides, copied from its options. */
  retrieval: retrievalOverridesSchema.optional(),
});
export type SegmentFramesJob = z.infer<typeof segmentFramesJobSchema>;

/**
 * What happens to the input's audio in annotated.mp4, decided by the producer from its probe:
 * `copy` (a codec MP4 players take as it is), `aac` (transcoded), or `none` with the reason.
 */
export const audioPlanSchema = z.discriminatedUnion('action', [
  z.object({
    action: z.enum(['copy', 'aac']),
    /** The input file, read again by the sink when it joins the segments. */
    path: z.string().min(1),
    streamIndex: z.number().int().nonnegative(),
    codec: z.string(),
  }),
  z.object({ action: z.literal('none'), reason: z.string() }),
]);
export type AudioPlan = z.infer<typeof audioPlanSchema>;

/**
 * How the sink decodes a file's source frames itself (STREAMSEG_SOURCE_FRAMES=sink): the same
 * decode as the producer's (rawDecodeArgs), so frame i is the frame the masks were made from.
 */
export const sourceDecodeSchema = z.object({
  path: z.string().min(1),
  streamIndex: z.number().int().nonnegative().optional(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  fps: z.number().positive(),
  hdr: z.object({ transfer: z.enum(['smpte2084', 'arib-std-b67']), primaries: z.string(), matrix: z.string(), range: z.enum(['tv', 'pc']) }).optional(),
  /** The stream's pixel format and colour tags (ffprobe's names): pick the sink's conversion to BT.709. */
  colour: z.object({ pixelFormat: z.string(), matrix: z.string().optional(), range: z.string().optional() }).optional(),
});
export type SourceDecode = z.infer<typeof sourceDecodeSchema>;

export const assembleVideoJobSchema = z.object({
  videoId: videoIdSchema,
  outDir: z.string().min(1),
  /** Set: the sink decodes the source frames from the file; absent: they are in Redis. */
  sourceDecode: sourceDecodeSchema.optional(),
  /** Where annotated.mp4's first frame is placed, ms: the source's, relative to the audio kept with it. @defaultValue 0 */
  videoOffsetMs: z.number().nonnegative().optional(),
  /** The input's audio for annotated.mp4. @defaultValue none */
  audio: audioPlanSchema.optional(),
});
export type AssembleVideoJob = z.infer<typeof assembleVideoJobSchema>;

/** Validates job data read from a queue; anything pushed by hand that does not fit is refused. */
export function parseJob<T>(schema: z.ZodType<T>, queue: string, data: unknown): T {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new JobPayloadError(queue, problems);
}
