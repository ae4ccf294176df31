/**
 * The one length unit for everything the renderer sizes in pixels (rain streaks, snow
 * flakes, sensor grain, light halos, minimum widths of thin structures).
 *
 * The model never sees a frame at its source size: `planModelInput` scales every video
 * to a constant pixel budget (the shipped model's 28672 = 224x128 pixels), aspect kept.
 * So a quantity that should look the same to the model must be the same number of
 * *model-input* pixels, whatever the render size. One unit is the source-pixel length
 * that becomes one model-input pixel after that scaling:
 *
 *   unit = sqrt(width·height / MODEL_PIXELS)
 *
 * 224x128 → 1, 320x180 → 1.42, 640x360 → 2.83, 1280x720 → 5.67, 360x640 → 2.83,
 * 768x576 → 3.93, 160x160 → 0.94. Being a geometric mean it is the same along both
 * axes and independent of aspect ratio (portrait and landscape alike). Counts of
 * particles are given per unit² (per model-input pixel), not per source pixel.
 */
export const MODEL_PIXELS = 224 * 128;

export function pixelUnit(width: number, height: number): number {
  return Math.sqrt((width * height) / MODEL_PIXELS);
}

/** Frame area in units² (model-input pixels): multiply by a density to get a particle count. */
export function unitArea(width: number, height: number): number {
  return (width * height) / pixelUnit(width, height) ** 2;
}
