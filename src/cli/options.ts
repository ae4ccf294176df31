import { Option, type Command } from 'commander';
import { loadConfig, type ConfigOverrides, type StreamsegConfig } from '../shared/config.js';

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

/** Splits `--classes road,vehicle` into names. */
export function parseClassList(value: string | undefined): string[] | undefined {
  if (!value) return undefined;
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  return names.length > 0 ? names : undefined;
}
