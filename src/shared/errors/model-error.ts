import type { ErrorCode } from './error-codes.js';
import { StreamsegError } from './streamseg-error.js';

/** The catalogue's E_MODEL_* and E_ADAPTER_* codes a model package can raise. */
export type ModelErrorCode = Extract<
  ErrorCode,
  'E_MODEL_MANIFEST' | 'E_MODEL_MISMATCH' | 'E_MODEL_LOAD' | 'E_ADAPTER_SHAPE' | 'E_ADAPTER_FILE' | 'E_ADAPTER_VALUES'
>;

/** The model package (manifest, ONNX files, adapters) is missing or inconsistent. */
export class ModelError extends StreamsegError {
  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
