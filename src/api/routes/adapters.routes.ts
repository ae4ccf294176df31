import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../../shared/errors/index.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { AdapterRegistry, addRuntimeAdapter, removeAdapter } from '../../workers/adapters/adapter-registry.js';
import type { ApiContext } from '../api-context.js';

const TAGS = ['adapters'];
/** PEFT file names the registry reads from an adapter directory. */
const PEFT_FILES: Record<string, string> = { config: 'adapter_config.json', weights: 'adapter_model.safetensors' };

/** GET/POST/DELETE /v1/adapters: the adapters every worker retrieves from (package + run-time, in Redis). */
export function registerAdapterRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/adapters', { schema: { tags: TAGS, summary: 'Adapters served to the workers (package and run-time), and any refused with the reason' } }, async () => {
    const pkg = requirePackage(ctx);
    const registry = await AdapterRegistry.open({ pkg, redis: ctx.redis });
    await registry.close();
    return {
      adapters: registry.entries().map((e) => ({
        name: e.name,
        source: e.source,
        condition: e.condition ?? null,
        version: e.adapter.version,
        r: e.adapter.r,
        alpha: e.adapter.alpha,
        targets: e.adapter.targets.size,
        centroids: e.centroids.length,
      })),
      problems: registry.problems(),
    };
  });

  app.post(
    '/v1/adapters',
    {
      schema: {
        tags: TAGS,
        summary: 'Add (or replace) a run-time adapter: multipart with files "config" (adapter_config.json) and "weights" (adapter_model.safetensors), fields "name", "centroid" (comma-separated numbers) and optional "condition"',
        consumes: ['multipart/form-data'],
      },
    },
    async (request, reply) => {
      const pkg = requirePackage(ctx);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-adapter-'));
      try {
        const fields = await receiveAdapter(request, dir);
        if (!fields.name) throw new HttpError(400, 'E_BAD_REQUEST', 'field "name" is required');
        if (!fields.centroid) throw new HttpError(400, 'E_BAD_REQUEST', 'field "centroid" (comma-separated numbers) is required: retrieval needs the adapter\'s domain centroid');
        const centroid = fields.centroid.split(',').map((v) => Number(v.trim()));
        if (centroid.some((v) => !Number.isFinite(v))) throw new HttpError(400, 'E_BAD_REQUEST', 'field "centroid" must be comma-separated numbers');
        const added = await addRuntimeAdapter(ctx.redis, pkg, { dir, name: fields.name, centroids: [centroid], condition: fields.condition || undefined });
        return reply.code(added.replaced ? 200 : 201).send(added);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  app.delete(
    '/v1/adapters/:name',
    { schema: { tags: TAGS, summary: 'Stop serving an adapter everywhere (a package adapter gets a tombstone)', params: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } } },
    async (request) => {
      const { name } = request.params as { name: string };
      const removed = await removeAdapter(ctx.redis, requirePackage(ctx), name);
      if (!removed) throw new HttpError(404, 'E_NOT_FOUND', `no adapter "${name}" is served`);
      return { name, removed: true };
    },
  );
}

function requirePackage(ctx: ApiContext): ModelPackage {
  if (!ctx.modelPackage) throw new HttpError(503, 'E_UNAVAILABLE', `the model package (STREAMSEG_MODEL=${ctx.config.modelDir}) could not be loaded by the API: adapters need it`);
  return ctx.modelPackage;
}

async function receiveAdapter(request: FastifyRequest, dir: string): Promise<Record<string, string>> {
  if (!request.isMultipart()) throw new HttpError(400, 'E_BAD_REQUEST', 'send multipart/form-data with files "config" and "weights"');
  const fields: Record<string, string> = {};
  const seen = new Set<string>();
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      const target = PEFT_FILES[part.fieldname];
      if (!target) {
        part.file.resume();
        throw new HttpError(400, 'E_BAD_REQUEST', `unexpected file field "${part.fieldname}" (expected "config" and "weights")`);
      }
      await writeFile(path.join(dir, target), await part.toBuffer());
      seen.add(part.fieldname);
    } else if (typeof part.value === 'string') {
      fields[part.fieldname] = part.value;
    }
  }
  for (const name of Object.keys(PEFT_FILES)) if (!seen.has(name)) throw new HttpError(400, 'E_BAD_REQUEST', `file "${name}" (${PEFT_FILES[name]}) is missing`);
  return fields;
}
