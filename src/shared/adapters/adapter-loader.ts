import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCode, ModelError } from '../errors/index.js';
import type { LoraTarget } from '../model-manifest.js';
import { parseSafetensors } from './safetensors.js';

/** File names of a HuggingFace PEFT LoRA adapter directory. */
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

const KEY_PREFIX = 'base_model.model.';

/** The part of PEFT's `adapter_config.json` streamseg reads; other fields are ignored. */
const adapterConfigSchema = z.object({
  peft_type: z.string().optional(),
  r: z.number().int().min(1),
  /** PEFT's default is 8. */
  lora_alpha: z.number().positive().default(8),
  target_modules: z.union([z.array(z.string()), z.string(), z.null()]).optional(),
  rank_pattern: z.record(z.string(), z.number().int().min(1)).optional(),
  alpha_pattern: z.record(z.string(), z.number().positive()).optional(),
  use_rslora: z.boolean().optional(),
  use_dora: z.boolean().optional(),
  fan_in_fan_out: z.boolean().optional(),
});
export type AdapterConfig = z.infer<typeof adapterConfigSchema>;

/** One LoRA target of one adapter: ΔW = scaling · B·A, B and A as stored in the file. */
export interface AdapterTarget {
  module: string;
  in: number;
  out: number;
  r: number;
  /** [r, in], row-major. */
  A: Float32Array;
  /** [out, r], row-major, unscaled. */
  B: Float32Array;
  /** lora_alpha / r (or / √r with use_rslora), with alpha_pattern/rank_pattern applied. */
  scaling: number;
}

export interface LoadedAdapter {
  name: string;
  /** Content hash of config + weights (16 hex chars): changes whenever the adapter does. */
  version: string;
  /** `r` and `lora_alpha` of adapter_config.json (targets may override them by pattern). */
  r: number;
  alpha: number;
  /** Targets present in the file, by module name; a model target absent here is not adapted (ΔW = 0). */
  targets: Map<string, AdapterTarget>;
  /** Bytes of the float32 weights held. */
  byteLength: number;
  /** Where it was loaded from (a directory, or `redis:<name>`), for messages. */
  source: string;
}

/** Raw bytes of an adapter, as read from a directory or from the run-time registry in Redis. */
export interface AdapterFiles {
  config: Buffer;
  weights: Buffer;
  /** Directory (or label) the files came from; errors name `<source>/<file>`. */
  source: string;
}

export async function readAdapterFiles(dir: string): Promise<AdapterFiles> {
  const read = async (file: string) => {
    const full = path.join(dir, file);
    try {
      return await readFile(full);
    } catch (cause) {
      throw new ModelError(
        ErrorCode.ADAPTER_FILE,
        `${full}: cannot read (${(cause as Error).message}); an adapter directory holds ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}`,
        { cause },
      );
    }
  };
  const [config, weights] = await Promise.all([read(ADAPTER_CONFIG_FILE), read(ADAPTER_WEIGHTS_FILE)]);
  return { config, weights, source: dir };
}

/** Content hash of an adapter: the same bytes give the same version on every machine. */
export function adapterVersion(files: Pick<AdapterFiles, 'config' | 'weights'>): string {
  return createHash('sha256').update(files.config).update('\0').update(files.weights).digest('hex').slice(0, 16);
}

/** PEFT matches pattern keys and list entries against module names by suffix (or as a regex). */
function moduleMatches(module: string, key: string): boolean {
  if (module === key || module.endsWith(`.${key}`)) return true;
  try {
    return new RegExp(`^(?:.*\\.)?(?:${key})$`).test(module);
  } catch {
    return false;
  }
}

function patternValue(pattern: Record<string, number> | undefined, module: string): number | undefined {
  if (!pattern) return undefined;
  for (const [key, value] of Object.entries(pattern)) if (moduleMatches(module, key)) return value;
  return undefined;
}

function parseConfig(files: AdapterFiles): AdapterConfig {
  const file = path.join(files.source, ADAPTER_CONFIG_FILE);
  let json: unknown;
  try {
    json = JSON.parse(files.config.toString('utf8'));
  } catch (cause) {
    throw new ModelError(ErrorCode.ADAPTER_FILE, `${file}: not valid JSON`, { cause });
  }
  const parsed = adapterConfigSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ModelError(ErrorCode.ADAPTER_FILE, `${file}: ${problems}`);
  }
  const config = parsed.data;
  if (config.peft_type !== undefined && config.peft_type.toUpperCase() !== 'LORA') {
    throw new ModelError(ErrorCode.ADAPTER_FILE, `${file}: peft_type is ${config.peft_type}; only LORA adapters can be merged`);
  }
  if (config.use_dora)
    throw new ModelError(ErrorCode.ADAPTER_FILE, `${file}: use_dora adapters are not supported (their magnitude vector cannot be fed as LoRA inputs)`);
  if (config.fan_in_fan_out) throw new ModelError(ErrorCode.ADAPTER_FILE, `${file}: fan_in_fan_out (Conv1D-style transposed) adapters are not supported`);
  return config;
}

/**
 * PEFT stores conv LoRA weights as A [r, in, kh, kw] and B [out, r, 1, 1]: as matrices, A is
 * [r, in·kh·kw] (a kxk conv target's `in` counts its kernel) and B drops the unit kernel dims.
 */
function matrixShape(shape: number[]): [number, number] | null {
  if (shape.length === 2) return [shape[0]!, shape[1]!];
  if (shape.length === 4) return [shape[0]!, shape[1]! * shape[2]! * shape[3]!];
  return null;
}

/**
 * Validates and decodes an adapter against the model's LoRA targets. Throws ModelError
 * `E_ADAPTER_FILE` for unreadable files or configs and `E_ADAPTER_SHAPE` (naming file, tensor,
 * expected and actual shape) when keys or shapes do not fit the model.
 */
export function parseAdapter(files: AdapterFiles, targets: readonly LoraTarget[], name: string): LoadedAdapter {
  const config = parseConfig(files);
  const weightsFile = path.join(files.source, ADAPTER_WEIGHTS_FILE);
  const st = parseSafetensors(files.weights, weightsFile);
  const byModule = new Map(targets.map((t) => [t.module, t]));
  const shapeError = (message: string) => new ModelError(ErrorCode.ADAPTER_SHAPE, `${weightsFile}: ${message}`);

  const pairs = new Map<string, { A?: { shape: number[]; data: Float32Array }; B?: { shape: number[]; data: Float32Array } }>();
  for (const [key, tensor] of st.tensors) {
    const match = /^(.*)\.lora_([AB])\.weight$/.exec(key);
    if (!key.startsWith(KEY_PREFIX) || !match) {
      throw shapeError(`tensor "${key}" is not a LoRA weight (expected ${KEY_PREFIX}<module>.lora_A.weight / .lora_B.weight)`);
    }
    const module = match[1]!.slice(KEY_PREFIX.length);
    if (!byModule.has(module)) {
      const known = targets.map((t) => t.module);
      throw shapeError(
        `tensor "${key}": module "${module}" is not a LoRA target of this model (targets: ${known.slice(0, 8).join(', ')}${known.length > 8 ? ', …' : ''})`,
      );
    }
    const entry = pairs.get(module) ?? {};
    entry[match[2] as 'A' | 'B'] = { shape: tensor.shape, data: tensor.data };
    pairs.set(module, entry);
  }
  if (pairs.size === 0) throw shapeError('holds no LoRA tensors');

  const adapted = new Map<string, AdapterTarget>();
  let byteLength = 0;
  for (const [module, pair] of pairs) {
    const target = byModule.get(module)!;
    const keyA = `${KEY_PREFIX}${module}.lora_A.weight`;
    const keyB = `${KEY_PREFIX}${module}.lora_B.weight`;
    if (!pair.A) throw shapeError(`tensor "${keyA}" is missing (${keyB} is present)`);
    if (!pair.B) throw shapeError(`tensor "${keyB}" is missing (${keyA} is present)`);
    const a = matrixShape(pair.A.shape);
    const b = matrixShape(pair.B.shape);
    const r = a?.[0] ?? 0;
    if (!a || a[1] !== target.in || r < 1) {
      throw shapeError(`tensor "${keyA}": expected [r, ${target.in}], got [${pair.A.shape.join(', ')}]`);
    }
    if (!b || b[0] !== target.out || b[1] !== r) {
      throw shapeError(`tensor "${keyB}": expected [${target.out}, ${r}] (r from lora_A), got [${pair.B.shape.join(', ')}]`);
    }
    const configR = patternValue(config.rank_pattern, module) ?? config.r;
    if (configR !== r) {
      throw shapeError(`tensor "${keyA}": rank ${r} differs from r = ${configR} in ${ADAPTER_CONFIG_FILE}`);
    }
    if (Array.isArray(config.target_modules) && !config.target_modules.some((k) => moduleMatches(module, k))) {
      throw shapeError(`tensor "${keyA}": module "${module}" is not in target_modules of ${ADAPTER_CONFIG_FILE}`);
    }
    const alpha = patternValue(config.alpha_pattern, module) ?? config.lora_alpha;
    const scaling = config.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
    adapted.set(module, { module, in: target.in, out: target.out, r, A: pair.A.data, B: pair.B.data, scaling });
    byteLength += pair.A.data.byteLength + pair.B.data.byteLength;
  }
  return { name, version: adapterVersion(files), r: config.r, alpha: config.lora_alpha, targets: adapted, byteLength, source: files.source };
}

/** Reads `dir/adapter_config.json` + `dir/adapter_model.safetensors` and validates them (see parseAdapter). */
export async function loadAdapter(dir: string, targets: readonly LoraTarget[], name = path.basename(path.resolve(dir))): Promise<LoadedAdapter> {
  return parseAdapter(await readAdapterFiles(dir), targets, name);
}
