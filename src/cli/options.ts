import { Option, type Command } from 'commander';
import { loadConfig, type ConfigOverrides, type StreamsegConfig } from '../shared/config.js';
import { ConfigError } from '../shared/errors/index.js';
import { MERGE_METHODS, retrievalOverridesSchema, type RetrievalOverrides } from '../shared/retrieval-options.js';

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

export interface VideoFlags {
  classes?: string;
  topK?: string;
  merge?: string;
  /** commander's `--no-adapters`: false when given. */
  adapters: boolean;
  /** commander's `--no-audio`: false when given. @defaultValue true */
  audio?: boolean;
}

/** The video's options from its flags; a bad value is a ConfigError naming the flag. */
export function videoOptionsFromFlags(flags: VideoFlags): { classes?: string[]; retrieval?: RetrievalOverrides; audio?: false } {
  const raw: Record<string, unknown> = {};
  if (flags.topK !== undefined) raw.topK = Number(flags.topK);
  if (flags.merge !== undefined) raw.method = flags.merge;
  // Nothing but a scene lying exactly on a centroid is within distance 0; beyond it, the base model runs.
  if (!flags.adapters) Object.assign(raw, { maxDistance: 0, beyondThreshold: 'base' });
  const parsed = retrievalOverridesSchema.safeParse(raw);
  if (!parsed.success) {
    // Quote what the user typed ("many"), not what it parsed to (NaN).
    const given: Record<string, [flag: string, value: unknown]> = { topK: ['--top-k', flags.topK], method: ['--merge', flags.merge] };
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const key = String(issue.path[0] ?? '');
        const [flag, value] = given[key] ?? [key, raw[key]];
        return `${flag}=${JSON.stringify(value)}: ${issue.message}`;
      }),
    );
  }
  const retrieval = Object.keys(parsed.data).length > 0 ? parsed.data : undefined;
  return { classes: parseClassList(flags.classes), ...(retrieval ? { retrieval } : {}), ...(flags.audio === false ? { audio: false as const } : {}) };
}

/** Splits `--classes road,vehicle` into names. */
function parseClassList(value: string | undefined): string[] | undefined {
  if (!value) return undefined;
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  return names.length > 0 ? names : undefined;
}
