/** Synthetic street world: renderer, conditions, stills and video writers. */
export { CLASSES, CLASS_NAMES, C, type ClassName, type SynthClass } from './classes.js';
export {
  CONDITIONS,
  BASE_CONDITIONS,
  COMPOSED_CONDITIONS,
  INTENSITY_RANGE,
  parseCondition,
  intensityRange,
  type Condition,
  type ConditionName,
  type Component,
} from './conditions.js';
export { generateLayout } from './layout.js';
export { renderFrame, renderScene, DEFAULT_SUPERSAMPLE, type RenderedFrame, type FrameRequest, type SceneRequest } from './render.js';
export { renderStill, planStill, toModelInput, MASK_PADDING, type StillMeta, type StillSpec } from './still.js';
export { renderStills, type StillsOptions, type StillsSummary } from './stills.js';
export { renderVideo, outputStem, type VideoOptions, type VideoResult, type ScenesFile } from './video.js';
export { planScenes, MIN_SCENE_FRAMES, type PlannedScene } from './scene-plan.js';
export { SynthError, type SynthErrorCode } from './synth-error.js';
