import { Option, type Command } from 'commander';
import { loadConfig, type ConfigOverrides, type StreamsegConfig } from '../shared/config.js';
import { MERGE_METHODS } from '../shared/retrieval-options.js';

/** Flags every command that touches the pipeline accepts; each maps onto one config key. */
export function addPipelineOptions(command: Command): Command {
  return command
    .addOption(new Option('--model <dir>', 'model package directory (STREAMSEG_MODEL)'))
    .addOption(new Option('--fps <n>', 'resample to this frame rate (STREAMSEG_FPS); default: source rate'))
    .addOption(new Option('--batch-frames <n>', 'frames per segmentation job (STREAMSEG_BATCH_FRAMES)'))
    .addOption(new Option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (LOG_LEVEL)'));
}

export interface PipelineFlags {
  model?: string;
  fps?: string;
  batchFrames?: string;
  logLevel?: string;
  out?: string;
}

export function configFromFlags(flags: PipelineFlags, extra: ConfigOverrides = {}): StreamsegConfig {
  return loadConfig({
    modelDir: flags.model,
    fps: flags.fps,
    batchFrames: flags.batchFrames,
    logLevel: flags.logLevel,
    outDir: flags.out,
    ...extra,
  });
}

/** Per-video flags of `run` and `submit`: vocabulary and adapter retrieval overrides. */
export function addVideoOptions(command: Command): Command {
  return command
    .addOption(new Option('--classes <names>', 'comma-separated class names to segment (default: all)'))
    .addOption(new Option('--top-k <n>', 'most adapters merged per scene (default: STREAMSEG_RETRIEVAL_TOP_K or 2)'))
    .addOption(new Option('--merge <method>', 'how retrieved adapters are merged').choices([...MERGE_METHODS]))
    .addOption(new Option('--no-adapters', 'segment with the base model only (no adapter retrieval)'))
    .addOption(new Option('--no-audio', "leave the input's audio out of annotated.mp4 (kept by default)"));
}

export { videoOptionsFromFlags, type VideoFlags } from '../shared/video-options.js';
