import { ErrorCode, FrameError } from '../../shared/errors/index.js';
import { MaskUnletterboxer } from '../../shared/letterbox.js';
import type { ProbedState } from './probe-facts.js';

/**
 * A frame's mask at the source's size: the model's mask, checked against the model input size,
 * with its letterbox removed and scaled back to the source frame. Both assemblies (file and
 * live) overlay and record this one. One buffer, reused frame after frame.
 */
export class SourceMask {
  readonly width: number;
  readonly height: number;
  /** The last mask projected (width × height, one class index per pixel). */
  readonly pixels: Uint8Array;
  private readonly unletterbox: MaskUnletterboxer;
  private readonly modelMaskBytes: number;

  constructor(private readonly video: ProbedState) {
    this.width = video.sourceWidth;
    this.height = video.sourceHeight;
    this.pixels = new Uint8Array(this.width * this.height);
    this.unletterbox = new MaskUnletterboxer(video.letterbox, video.inputWidth, this.width, this.height);
    this.modelMaskBytes = video.inputWidth * video.inputHeight;
  }

  /** For the mask encoder: the model-mask column each source column copies. */
  get columnOffsets(): Int32Array {
    return this.unletterbox.columnOffsets;
  }

  /** Projects frame `index`'s model mask into `pixels`; a mask of the wrong size is a frame error. */
  project(index: number, mask: Uint8Array): Uint8Array {
    if (mask.length !== this.modelMaskBytes) {
      throw new FrameError(
        ErrorCode.FRAME_SIZE,
        `mask of frame ${index} has ${mask.length} bytes, ${this.video.inputWidth}x${this.video.inputHeight} expected`,
      );
    }
    return this.unletterbox.apply(mask, this.pixels);
  }
}
