import { StreamsegError } from './streamseg-error.js';
import { ErrorCode } from './error-codes.js';

/** A job's data does not match its schema (e.g. pushed into a queue by hand). */
export class JobPayloadError extends StreamsegError {
  constructor(queue: string, problems: string) {
    super(ErrorCode.JOB_PAYLOAD, `malformed ${queue} job: ${problems}`);
  }
}
