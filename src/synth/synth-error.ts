import { StreamsegError } from '../shared/errors/index.js';

export type SynthErrorCode = 'E_SYNTH_OPTION' | 'E_SYNTH_OUTPUT' | 'E_SYNTH_WORKER';

/** The synthetic-world renderer was asked for something it cannot do; the message names the flag. */
export class SynthError extends StreamsegError {
  constructor(code: SynthErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
