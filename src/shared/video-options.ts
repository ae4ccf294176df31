import { ConfigError } from './errors/index.js';
import { retrievalOverridesSchema, type RetrievalOverrides } from './retrieval-options.js';

/**
 * A video's per-video options (vocabulary, adapter retrieval, audio) from flag-like strings:
 * the CLI's `run`/`submit` flags and the API's submission fields go through the same parser.
 */

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
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length > 0 ? names : undefined;
}
