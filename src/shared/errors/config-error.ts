import { StreamsegError } from './streamseg-error.js';
import { ErrorCode } from './error-codes.js';

/** Start-up configuration is invalid; `problems` holds one line per bad value. */
export class ConfigError extends StreamsegError {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(ErrorCode.CONFIG, `invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }

  override toLine(): string {
    return `${this.code}: ${this.problems.join('; ')}`;
  }
}
