import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCode, ModelError } from './errors/index.js';

const rgb = z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)]);
const triple = z.tuple([z.number(), z.number(), z.number()]);

/** `models/<name>/model.json`: everything a worker needs to feed and read the network. */
export const modelManifestSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  /** ONNX file of the segmentation network, relative to the package directory. */
  model: z.string().min(1).default('model.onnx'),
  input: z.object({
    name: z.string().min(1),
    width: z.number().int().min(8).max(4096),
    height: z.number().int().min(8).max(4096),
    layout: z.literal('NCHW'),
    /** Applied as (pixel / 255 - mean) / std per RGB channel. */
    mean: triple,
    std: triple.refine((s) => s.every((v) => v > 0), 'std values must be > 0'),
    /**
     * Aspect-preserving input for networks with dynamic height and width: each video's input
     * keeps about `pixels` pixels, sides rounded to `stride` and capped at `maxSide` (see
     * planModelInput). Absent: every frame is letterboxed into `width`×`height`.
     * `smallSourceScale` (default 1): a source with fewer pixels than `pixels` is scaled by at
     * least this factor, because a small source carries less detail than the budget holds and
     * the network does better on it when its objects are drawn larger.
     */
    fit: z
      .object({
        pixels: z
          .number()
          .int()
          .min(64)
          .max(4096 * 4096),
        stride: z.number().int().min(1).max(256),
        maxSide: z.number().int().min(8).max(4096),
        smallSourceScale: z.number().min(1).max(4).optional(),
      })
      .optional(),
  }),
  output: z.object({ name: z.string().min(1) }),
  classes: z
    .array(z.object({ name: z.string().min(1), color: rgb, embedding: z.array(z.number()).min(1) }))
    .min(1)
    .max(255),
  classEmbeddings: z.object({ input: z.string().min(1), dim: z.number().int().min(1) }),
  lora: z.object({
    targets: z.array(
      z.object({
        module: z.string().min(1),
        in: z.number().int().min(1),
        out: z.number().int().min(1),
        inputA: z.string().min(1),
        inputB: z.string().min(1),
      }),
    ),
  }),
  embedder: z.object({ file: z.string().min(1), input: z.string().min(1), output: z.string().min(1), size: z.number().int().min(1) }).optional(),
  adapters: z.object({ dir: z.string().min(1), index: z.string().min(1) }).optional(),
});

export type ModelManifest = z.infer<typeof modelManifestSchema>;
export type LoraTarget = ModelManifest['lora']['targets'][number];

export interface ModelPackage {
  dir: string;
  manifest: ModelManifest;
  modelPath: string;
}

/** Reads and validates `model.json`; every problem names the file and the field. */
export async function loadModelPackage(dir: string): Promise<ModelPackage> {
  const file = path.join(dir, 'model.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ModelError(ErrorCode.MODEL_MANIFEST, `cannot read ${file}: is --model (STREAMSEG_MODEL) a model package directory?`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ModelError(ErrorCode.MODEL_MANIFEST, `${file} is not valid JSON`, { cause });
  }
  const parsed = modelManifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ModelError(ErrorCode.MODEL_MANIFEST, `${file}: ${problems}`);
  }
  const manifest = parsed.data;
  for (const cls of manifest.classes) {
    if (cls.embedding.length !== manifest.classEmbeddings.dim) {
      throw new ModelError(
        ErrorCode.MODEL_MANIFEST,
        `${file}: class "${cls.name}" embedding has ${cls.embedding.length} values, classEmbeddings.dim is ${manifest.classEmbeddings.dim}`,
      );
    }
  }
  return { dir, manifest, modelPath: path.join(dir, manifest.model) };
}
