export { StreamsegError, errorLine } from './streamseg-error.js';
export { ConfigError } from './config-error.js';
export { InputError, type InputErrorCode } from './input-error.js';
export { ModelError, type ModelErrorCode } from './model-error.js';
export { JobPayloadError } from './job-payload-error.js';
export { FfmpegError } from './ffmpeg-error.js';
export { FrameError, type FrameErrorCode } from './frame-error.js';
export { HttpError, type HttpErrorCode } from './http-error.js';
