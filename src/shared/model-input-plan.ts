import { computeLetterbox, type LetterboxRect } from './letterbox.js';
import type { ModelManifest } from './model-manifest.js';

/** The manifest fields that decide how a source frame becomes the network's input. */
export type ModelInputSpec = Pick<ModelManifest['input'], 'width' | 'height' | 'fit'>;

/** How one video's frames reach the model: the input size and where the source lands in it. */
export interface ModelInputPlan {
  width: number;
  height: number;
  /** The scaled source inside the input; the rest is black padding (none in `fit` mode). */
  rect: LetterboxRect;
}

/**
 * The model input for a source of `sourceWidth`×`sourceHeight`.
 *
 * - `fit` (a fully convolutional network with dynamic height and width): the source keeps its
 *   aspect ratio at a constant pixel budget, each side rounded to the network's stride, and fills
 *   the whole input (no bars the model never saw). A 16:9 video of any size becomes the same
 *   224x128 input at the shipped model's budget, a 4:3 one 192x144, a square one 176x176, so the
 *   cost per frame hardly depends on the source and the network always sees content at the
 *   scale it was trained on. Rounding stretches one side by at most half a stride. A source
 *   smaller than the budget is scaled by at least `fit.smallSourceScale` (the shipped model:
 *   1.4, so 160x160 becomes 224x224 rather than 176x176): measured with `streamseg eval`, base
 *   on clear 160x160 rose from 77.1 to 79.4 mIoU that way (training/README.md).
 * - otherwise (a fixed-size network): letterboxed into `width`×`height`, centred, padded black.
 *
 * Training renders its stills through this same function and the producer's resizer
 * (`streamseg synth --stills --model`), so the network learns on what the producer sends it.
 */
export function planModelInput(input: ModelInputSpec, sourceWidth: number, sourceHeight: number): ModelInputPlan {
  if (!(sourceWidth > 0 && sourceHeight > 0)) throw new RangeError(`source size ${sourceWidth}x${sourceHeight} is not positive`);
  if (!input.fit) {
    return { width: input.width, height: input.height, rect: computeLetterbox(sourceWidth, sourceHeight, input.width, input.height) };
  }
  const { pixels, stride, maxSide, smallSourceScale = 1 } = input.fit;
  const area = sourceWidth * sourceHeight;
  const scale = Math.max(Math.sqrt(pixels / area), area < pixels ? smallSourceScale : 0);
  const side = (length: number) => Math.min(maxSide, Math.max(stride * 2, Math.round((length * scale) / stride) * stride));
  const width = side(sourceWidth);
  const height = side(sourceHeight);
  return { width, height, rect: { x: 0, y: 0, width, height } };
}
