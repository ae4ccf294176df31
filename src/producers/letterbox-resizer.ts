import sharp from 'sharp';
import type { LetterboxRect } from '../shared/letterbox.js';
import type { ModelInputPlan } from '../shared/model-input-plan.js';

// libvips' operation cache pays off for files opened repeatedly, never for raw frames
// seen once: off, so a long video does not grow the cache.
sharp.cache(false);

const BLACK = { r: 0, g: 0, b: 0 };

/**
 * Scales a source RGB24 frame into the model input of a plan (`planModelInput`): into the
 * plan's rect, padded black around it when the plan letterboxes. The content lands exactly on
 * that rect: the sink maps masks back with the same rect, so any drift here would shift every
 * mask. Training stills go through this class too (train as you serve).
 */
export class LetterboxResizer {
  readonly rect: LetterboxRect;
  /** Bytes of one source frame and one model-input frame (RGB24). */
  readonly sourceBytes: number;
  readonly inputBytes: number;
  private readonly padding: { top: number; bottom: number; left: number; right: number };

  readonly inputWidth: number;
  readonly inputHeight: number;

  constructor(
    readonly sourceWidth: number,
    readonly sourceHeight: number,
    plan: ModelInputPlan,
  ) {
    const { width: inputWidth, height: inputHeight } = plan;
    this.inputWidth = inputWidth;
    this.inputHeight = inputHeight;
    this.rect = plan.rect;
    this.sourceBytes = sourceWidth * sourceHeight * 3;
    this.inputBytes = inputWidth * inputHeight * 3;
    const { x, y, width, height } = this.rect;
    this.padding = { top: y, bottom: inputHeight - y - height, left: x, right: inputWidth - x - width };
  }

  /** Returns a new buffer (never aliases `source`, which the decoder reuses). */
  async resize(source: Buffer): Promise<Buffer> {
    if (source.length !== this.sourceBytes) {
      throw new RangeError(`frame has ${source.length} bytes, expected ${this.sourceBytes} (${this.sourceWidth}x${this.sourceHeight} RGB24)`);
    }
    const { rect, padding } = this;
    if (rect.width === this.sourceWidth && rect.height === this.sourceHeight && this.sourceBytes === this.inputBytes) {
      return Buffer.from(source);
    }
    let image = sharp(source, { raw: { width: this.sourceWidth, height: this.sourceHeight, channels: 3 } });
    if (rect.width !== this.sourceWidth || rect.height !== this.sourceHeight) {
      image = image.resize(rect.width, rect.height, { fit: 'fill' });
    }
    if (padding.top + padding.bottom + padding.left + padding.right > 0) {
      image = image.extend({ ...padding, background: BLACK });
    }
    const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.width !== this.inputWidth || info.height !== this.inputHeight || info.channels !== 3) {
      throw new Error(`letterbox produced ${info.width}x${info.height}x${info.channels}, expected ${this.inputWidth}x${this.inputHeight}x3`);
    }
    return data;
  }
}
