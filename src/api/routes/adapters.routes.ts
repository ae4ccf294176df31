import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCode, HttpError, ModelError } from '../../shared/errors/index.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { parseAdapter, readAdapterFiles } from '../../shared/adapters/adapter-loader.js';
import { addRuntimeAdapter, listAdapters, readAdapterIndex, removeAdapter, restorePackageAdapter } from '../../shared/adapters/adapter-store.js';
import type { ApiContext } from '../api-context.js';

const TAGS = ['adapters'];
/** PEFT file names the registry reads from an adapter directory. */
const PEFT_FILES: Record<string, string> = { config: 'adapter_config.json', weights: 'adapter_model.safetensors' };
/** Largest |value| of an uploaded adapter's A and B (trained LoRA factors are far below it). */
export const MAX_ADAPTER_WEIGHT = 1e3;
/** Bounds of an uploaded centroid's L2 norm (the embedder's vectors are of unit scale). */
export const CENTROID_NORM_RANGE = [1e-6, 1e3] as const;
const nameParams = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } as const;

/** GET/POST/DELETE /v1/adapters: the adapters every worker retrieves from (package + run-time, in Redis). */
export function registerAdapterRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/adapters',
    {
      schema: {
        tags: TAGS,
        summary: 'Adapters served to the workers (package and run-time), from the index and Redis without loading weights, and any record that cannot be read',
      },
    },
    async () => {
      return listAdapters(ctx.redis, requirePackage(ctx));
    },
  );

  app.post(
    '/v1/adapters',
    {
      schema: {
        tags: TAGS,
        summary:
          'Add (or replace) a run-time adapter: multipart with files "config" (adapter_config.json) and "weights" (adapter_model.safetensors), fields "name", "centroid" (comma-separated numbers), optional "condition", and "shadow=true" to serve it in place of the package adapter of the same name (409 E_ADAPTER_READ_ONLY without it)',
        consumes: ['multipart/form-data'],
      },
    },
    async (request, reply) => {
      const pkg = requirePackage(ctx);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-adapter-'));
      try {
        const fields = await receiveAdapter(request, dir);
        if (!fields.name) throw new HttpError(400, ErrorCode.BAD_REQUEST, 'field "name" is required');
        if (!fields.centroid)
          throw new HttpError(
            400,
            ErrorCode.BAD_REQUEST,
            'field "centroid" (comma-separated numbers) is required: retrieval needs the adapter\'s domain centroid',
          );
        const centroid = fields.centroid.split(',').map((v) => (v.trim() === '' ? Number.NaN : Number(v.trim())));
        if (centroid.some((v) => !Number.isFinite(v))) throw new HttpError(400, ErrorCode.BAD_REQUEST, 'field "centroid" must be comma-separated numbers');
        const norm = Math.hypot(...centroid);
        if (!(norm >= CENTROID_NORM_RANGE[0] && norm <= CENTROID_NORM_RANGE[1])) {
          throw new ModelError(
            ErrorCode.ADAPTER_VALUES,
            `field "centroid": its L2 norm is ${norm}, outside ${CENTROID_NORM_RANGE[0]}..${CENTROID_NORM_RANGE[1]}; send the centroid in the embedder's space`,
          );
        }
        const shadows = (await packageAdapterNames(pkg)).has(fields.name);
        if (shadows && fields.shadow !== 'true') {
          throw new HttpError(
            409,
            ErrorCode.ADAPTER_READ_ONLY,
            `"${fields.name}" is a package adapter, read-only: pick another name, or send shadow=true to serve this one in its place (DELETE removes the shadow)`,
          );
        }
        assertWeightsBounded(parseAdapter(await readAdapterFiles(dir), pkg.manifest.lora.targets, fields.name));
        const added = await addRuntimeAdapter(ctx.redis, pkg, { dir, name: fields.name, centroids: [centroid], condition: fields.condition || undefined });
        return reply.code(added.replaced ? 200 : 201).send({ ...added, shadows });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  app.delete(
    '/v1/adapters/:name',
    {
      schema: {
        tags: TAGS,
        summary: 'Remove a run-time adapter (one that shadowed a package adapter gives the package one back); package adapters are read-only (409)',
        params: nameParams,
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const pkg = requirePackage(ctx);
      if (await removeAdapter(ctx.redis, pkg, name, { runtimeOnly: true })) return { name, removed: true };
      if ((await packageAdapterNames(pkg)).has(name)) {
        throw new HttpError(
          409,
          ErrorCode.ADAPTER_READ_ONLY,
          `"${name}" is a package adapter, read-only: it ships with the model package (shadow it with a run-time adapter instead)`,
        );
      }
      throw new HttpError(404, ErrorCode.NOT_FOUND, `no adapter "${name}" is served`);
    },
  );

  app.post(
    '/v1/adapters/:name/restore',
    {
      schema: {
        tags: TAGS,
        summary: 'Serve the package adapter of this name again: drops a run-time adapter shadowing it, or a removal recorded by an older version',
        params: nameParams,
      },
    },
    async (request) => {
      const { name } = request.params as { name: string };
      const pkg = requirePackage(ctx);
      if (!(await packageAdapterNames(pkg)).has(name)) throw new HttpError(404, ErrorCode.NOT_FOUND, `the model package has no adapter "${name}"`);
      const shadowRemoved = await removeAdapter(ctx.redis, pkg, name, { runtimeOnly: true });
      const tombstoneRemoved = await restorePackageAdapter(ctx.redis, name);
      return { name, restored: shadowRemoved || tombstoneRemoved };
    },
  );
}

async function packageAdapterNames(pkg: ModelPackage): Promise<Set<string>> {
  const index = await readAdapterIndex(pkg).catch(() => undefined);
  return new Set(index?.adapters.map((a) => a.name) ?? []);
}

/** Refuses weights no training produces (±1e38 would poison every merge it takes part in). */
function assertWeightsBounded(adapter: ReturnType<typeof parseAdapter>): void {
  for (const target of adapter.targets.values()) {
    for (const [label, values] of [
      ['A', target.A],
      ['B', target.B],
    ] as const) {
      for (const value of values) {
        if (!(Math.abs(value) <= MAX_ADAPTER_WEIGHT)) {
          throw new ModelError(
            ErrorCode.ADAPTER_VALUES,
            `adapter "${adapter.name}": ${target.module} lora_${label} holds ${value}, outside ±${MAX_ADAPTER_WEIGHT}; check the file is a trained LoRA adapter`,
          );
        }
      }
    }
  }
}

function requirePackage(ctx: ApiContext): ModelPackage {
  if (!ctx.modelPackage)
    throw new HttpError(
      503,
      ErrorCode.UNAVAILABLE,
      `the model package (STREAMSEG_MODEL=${ctx.config.modelDir}) could not be loaded by the API: adapters need it`,
    );
  return ctx.modelPackage;
}

async function receiveAdapter(request: FastifyRequest, dir: string): Promise<Record<string, string>> {
  if (!request.isMultipart()) throw new HttpError(400, ErrorCode.BAD_REQUEST, 'send multipart/form-data with files "config" and "weights"');
  const fields: Record<string, string> = {};
  const seen = new Set<string>();
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      const target = PEFT_FILES[part.fieldname];
      if (!target) {
        part.file.resume();
        throw new HttpError(400, ErrorCode.BAD_REQUEST, `unexpected file field "${part.fieldname}" (expected "config" and "weights")`);
      }
      await writeFile(path.join(dir, target), await part.toBuffer());
      seen.add(part.fieldname);
    } else if (typeof part.value === 'string') {
      fields[part.fieldname] = part.value;
    }
  }
  for (const name of Object.keys(PEFT_FILES))
    if (!seen.has(name)) throw new HttpError(400, ErrorCode.BAD_REQUEST, `file "${name}" (${PEFT_FILES[name]}) is missing`);
  return fields;
}
