import { decoderMakesModelInput } from '../shared/media/raw-video-decode.js';
import type { ModelInputPlan } from '../shared/model-input-plan.js';
import type { DecodeOptions } from './ffmpeg.repository.js';
import type { RgbImage } from './frame-histogram.js';
import { LetterboxResizer } from './letterbox-resizer.js';

/**
 * Where a file's model inputs come from, one decision for the producer and for the eval that
 * mirrors it. When the source-size frame is not needed (the sink decodes the source itself) and
 * the plan shrinks the source, ffmpeg hands out the model input (`decoderMakesModelInput`) and
 * scene cuts look at the picture inside its letterbox bars; otherwise frames come at source size
 * and `LetterboxResizer` makes the input.
 */
export class ModelInputFrames {
  /** What to add to `FfmpegRepository.decodeFrames`' options. */
  readonly decodeOptions: Pick<DecodeOptions, 'modelInput'>;
  /** Only when frames come at source size. */
  private readonly resizer?: LetterboxResizer;
  private readonly image: RgbImage;

  constructor(plan: ModelInputPlan, sourceWidth: number, sourceHeight: number, options: { sourceNeeded: boolean }) {
    // Whether decoded frames are model inputs (true) or source-size frames (false).
    const fromDecoder = !options.sourceNeeded && decoderMakesModelInput(plan, sourceWidth, sourceHeight);
    this.decodeOptions = fromDecoder ? { modelInput: plan } : {};
    if (!fromDecoder) this.resizer = new LetterboxResizer(sourceWidth, sourceHeight, plan);
    this.image = fromDecoder
      ? { data: new Uint8Array(0), width: plan.width, height: plan.height, region: plan.rect }
      : { data: new Uint8Array(0), width: sourceWidth, height: sourceHeight };
  }

  /** The image the scene-cut detector looks at for a decoded frame (valid until the next call). */
  cutImage(frame: Uint8Array): RgbImage {
    this.image.data = frame;
    return this.image;
  }

  /** The model input of a decoded frame, in a new buffer (the decoder reuses `frame`). */
  input(frame: Buffer): Promise<Buffer> {
    return this.resizer ? this.resizer.resize(frame) : Promise.resolve(Buffer.from(frame));
  }
}
