/**
 * The error catalogue: every code streamseg raises, with whether another attempt of the
 * same job (or request) may succeed and a one-line message a user can act on. `code` on a
 * StreamsegError is one of these; tests, metrics and failed-job reasons key on it.
 *
 * `retryable` decides what a queue worker does with a failure (see jobFailure): false means
 * no attempt can fix it (the input, the job's data, the model, or the video itself is the
 * problem), so BullMQ gets an UnrecoverableError; true means the job is retried while it has
 * attempts left. For codes that never reach a worker (CLI, HTTP) it says the same thing for
 * the command or request.
 */
export interface ErrorCodeInfo {
  readonly retryable: boolean;
  /** One line for a user: what went wrong and what to do; the error's own message has the details. */
  readonly message: string;
}

export const ERROR_CATALOGUE = {
  // Start-up, configuration, Redis
  E_CONFIG: { retryable: false, message: 'a setting or flag is invalid: fix the value the message names' },
  E_REDIS: { retryable: true, message: 'Redis cannot be reached: check REDIS_URL and that redis-server is running' },
  E_REDIS_AUTH: { retryable: false, message: 'Redis refused the credentials: put the password in REDIS_URL' },
  E_REDIS_TLS: { retryable: false, message: 'TLS to Redis failed: use rediss:// only for a TLS port and trust its CA' },
  E_REDIS_START: { retryable: false, message: 'the embedded redis-server did not start: install redis-server or set REDIS_URL' },
  E_OUTPUT_DIR: { retryable: false, message: 'the output directory is outside the allowed output root: choose one under it' },
  E_SHUTDOWN_GRACE: { retryable: false, message: 'the process was still busy when its shutdown grace ran out: unfinished jobs are recovered as stalled' },
  E_INTERNAL: { retryable: true, message: 'an unexpected error: the log has the details; please report it' },

  // Inputs (file, URL, stdin)
  E_INPUT_NOT_FOUND: { retryable: false, message: 'the input file does not exist: check the path' },
  E_INPUT_DIRECTORY: { retryable: false, message: 'the input is a directory: give a video file' },
  E_INPUT_NOT_FILE: { retryable: false, message: 'the input is not a regular file: give a video file' },
  E_INPUT_NOT_VIDEO: { retryable: false, message: 'the input is not a video ffprobe can read: give a video file' },
  E_INPUT_NO_VIDEO_STREAM: { retryable: false, message: 'the input has no video stream: give a file with video' },
  E_INPUT_EMPTY: { retryable: false, message: 'the input holds no frames: give a video with at least one frame' },
  E_INPUT_DIMENSIONS: { retryable: false, message: 'the video has unusable dimensions: re-encode it to an ordinary size' },
  E_INPUT_DECODE: { retryable: false, message: 'ffmpeg could not decode the input: check or re-encode the file' },
  E_INPUT_URL_SCHEME: { retryable: false, message: 'the URL scheme is not supported: use http(s), rtsp, rtmp, srt or udp' },
  E_INPUT_URL_INVALID: { retryable: false, message: 'the URL cannot be parsed: check its spelling' },
  E_INPUT_URL_DESTINATION: { retryable: false, message: 'the URL points somewhere the destination policy forbids: use a public address' },
  E_STDIN_SPOOL: { retryable: false, message: 'standard input could not be spooled to disk: check free space in the temporary directory' },
  E_VIDEO_ID: { retryable: false, message: 'the video id is not valid: use letters, digits, - and _' },

  // Live sources and outputs
  E_LIVE_INPUT: { retryable: true, message: 'a live video needs a URL input' },
  E_LIVE_CONNECT: { retryable: false, message: 'no video came from the live source in time: check its address, port and credentials' },
  E_LIVE_NO_VIDEO: { retryable: false, message: 'the live video stopped before any frame arrived: nothing was written' },
  E_LIVE_OUTPUT: { retryable: true, message: 'a live output path holds a character the live outputs cannot carry: rename it' },

  // Pipeline state, jobs, frames
  E_JOB_PAYLOAD: { retryable: false, message: 'a job does not match its schema: submit videos through streamseg, not by hand' },
  E_VIDEO_FAILED: { retryable: false, message: 'the video failed in another stage: its status says why' },
  E_VIDEO_GONE: { retryable: false, message: 'the video is no longer in Redis (deleted, cancelled or expired): submit it again' },
  E_VIDEO_UNKNOWN: { retryable: false, message: 'no such video in this Redis: check the id (it may have expired)' },
  E_CANCELLED: { retryable: false, message: 'the video was cancelled' },
  E_FRAME_MISSING: { retryable: true, message: "a frame's data is missing from Redis (expired?): raise STREAMSEG_FRAME_TTL_SECONDS if it recurs" },
  E_FRAME_SIZE: { retryable: false, message: "a frame's data is not the size its video's facts say: resubmit the video" },
  E_SOURCE_UNREADABLE: {
    retryable: true,
    message:
      "the sink cannot decode the input file's source frames itself: give sinks read access to the producers' input files, or set STREAMSEG_SOURCE_FRAMES=redis on the producers",
  },
  E_SCENE_EMBEDDING: { retryable: true, message: "a scene's embedding could not be computed from Redis: the frames may have expired" },
  E_FRAMES_FAILED: { retryable: false, message: "a frames job failed on its last attempt: the video's status has the worker's reason" },
  E_INFERENCE_THREAD: { retryable: true, message: 'the inference thread failed: the job is retried; the log has the cause' },
  E_FFMPEG: { retryable: true, message: 'ffmpeg or ffprobe failed or is missing: install ffmpeg; the message quotes its last line' },
  E_SINK_RESUME: { retryable: false, message: "the sink cannot resume from the output directory's checkpoint: remove the partial output and resubmit" },
  E_SINK_OWNER_LOST: { retryable: true, message: 'another sink took the video over: this one stops; nothing to do' },

  // Model package and adapters
  E_MODEL_MANIFEST: { retryable: true, message: "the model package's model.json is missing or invalid: check the package" },
  E_MODEL_MISMATCH: { retryable: false, message: 'the ONNX model does not match its manifest: rebuild or re-import the package' },
  E_MODEL_LOAD: { retryable: false, message: 'ONNX Runtime cannot load the model: check the file and the execution provider' },
  E_ADAPTER_SHAPE: { retryable: true, message: "an adapter's tensors do not fit the model's LoRA targets: train it for this model" },
  E_ADAPTER_FILE: { retryable: true, message: 'an adapter file is missing or unreadable: check the adapter index' },
  E_ADAPTER_VALUES: { retryable: false, message: "an adapter's values are not finite numbers: retrain it" },
  E_ADAPTER_NOT_FOUND: { retryable: false, message: 'no such adapter is served: see streamseg adapters list' },

  // HTTP API
  E_UNAUTHORIZED: { retryable: false, message: 'the request has no valid token: send Authorization: Bearer TOKEN' },
  E_FORBIDDEN: { retryable: false, message: "the token's scope does not allow this request" },
  E_BAD_REQUEST: { retryable: false, message: 'the request is malformed: the message says which field' },
  E_NOT_FOUND: { retryable: false, message: 'no such resource' },
  E_OUTPUT_NOT_READY: { retryable: true, message: 'the output is not written yet: try again when the video has finished' },
  E_UPLOAD_TOO_LARGE: { retryable: false, message: 'the upload is larger than the server accepts' },
  E_RANGE: { retryable: false, message: 'the requested byte range is outside the file' },
  E_NOT_LIVE: { retryable: false, message: 'the video is not live' },
  E_UNAVAILABLE: { retryable: true, message: 'the service is not ready: try again after Retry-After' },
  E_ADAPTER_READ_ONLY: { retryable: false, message: 'adapters cannot be changed on this server' },
  E_RATE_LIMITED: { retryable: true, message: 'too many requests for this token: try again after Retry-After' },
  E_TOO_MANY_VIDEOS: { retryable: true, message: 'this token has too many videos running: try again when one finishes' },

  // CLI tools: synth, score, model import, training (Python)
  E_SYNTH_OPTION: { retryable: false, message: 'a synth option is invalid: fix the flag the message names' },
  E_SYNTH_OUTPUT: { retryable: false, message: 'synth cannot write its output: check the path' },
  E_SYNTH_WORKER: { retryable: true, message: 'a synth render thread failed' },
  E_SCORE_INPUT: { retryable: false, message: 'a file given to score is not what streamseg wrote' },
  E_SCORE_NOT_FOUND: { retryable: false, message: 'a file or directory given to score does not exist' },
  E_PYTHON: { retryable: false, message: 'Python 3 with torch and onnx is needed: install it or set STREAMSEG_PYTHON' },
  E_PYTHON_SCRIPT: { retryable: false, message: 'a training script is missing: training/ must sit next to src/ or dist/' },
  E_PYTHON_FAILED: { retryable: false, message: 'a training script failed: the message quotes its last line' },
  E_IMPORT_BATCH: { retryable: false, message: "the imported model's batch dimension is not usable" },
  E_IMPORT_CLASSES: { retryable: false, message: 'the class names given to model import are wrong: see --classes' },
  E_IMPORT_CORRUPT: { retryable: false, message: 'the file given to model import is not a readable ONNX model' },
  E_IMPORT_EMBEDDER: { retryable: false, message: 'no image embedder could be derived from the imported model' },
  E_IMPORT_FILE: { retryable: false, message: 'the file given to model import does not exist' },
  E_IMPORT_GRAPH: { retryable: false, message: "the imported model's graph cannot be adapted" },
  E_IMPORT_LAYOUT: { retryable: false, message: "the imported model's input or output layout is not supported" },
  E_IMPORT_LORA: { retryable: false, message: 'the imported model has no layers LoRA can target' },
  E_IMPORT_NOT_SEGMENTATION: { retryable: false, message: 'the imported model is not a segmentation model' },
  E_IMPORT_OPSET: { retryable: false, message: "the imported model's opset is not supported" },
  E_IMPORT_OPTIONS: { retryable: false, message: 'a model import option is invalid' },
  E_IMPORT_OUT: { retryable: false, message: 'model import cannot write its output package' },
  E_IMPORT_PARITY: { retryable: false, message: 'the imported model does not give the same answers after conversion' },
  E_IMPORT_RUN: { retryable: false, message: 'the imported model failed to run' },
  E_TRAIN_EXISTS: { retryable: false, message: 'the training output already exists: choose another name or remove it' },
  E_TRAIN_FFMPEG: { retryable: false, message: 'training could not run ffmpeg: install ffmpeg' },
  E_TRAIN_INPUT: { retryable: false, message: 'a training input is missing or unreadable' },
  E_TRAIN_LABELS: { retryable: false, message: "the training labels do not match the model's classes" },
  E_TRAIN_MODEL: { retryable: false, message: 'the model package cannot be trained on' },
  E_TRAIN_OP: { retryable: false, message: 'the model uses an operation training does not support' },
  E_TRAIN_OPTIONS: { retryable: false, message: 'a training option is invalid' },
} as const satisfies Record<`E_${string}`, ErrorCodeInfo>;

/** Every code streamseg raises. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

type ShortName<C extends string> = C extends `E_${infer N}` ? N : never;

/** The codes as typed constants: `ErrorCode.VIDEO_GONE` is `'E_VIDEO_GONE'`. */
export const ErrorCode = Object.freeze(Object.fromEntries(Object.keys(ERROR_CATALOGUE).map((code) => [code.slice(2), code]))) as {
  readonly [C in ErrorCode as ShortName<C>]: C;
};

/** Whether `value` is a code of the catalogue (e.g. one parsed from a failure reason or a script's output). */
export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, value);
}
