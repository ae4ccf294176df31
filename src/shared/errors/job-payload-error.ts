import { StreamsegError } from './streamseg-error.js';

/** A job's data does not match its schema (e.g. pushed into a queue by hand). */
export class JobPayloadError extends StreamsegError {
  constructor(queue: string, problems: string) {
    super('E_JOB_PAYLOAD', `malformed ${queue} job: ${problems}`);
  }
}
