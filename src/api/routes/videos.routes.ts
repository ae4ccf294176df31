import type { FastifyInstance, FastifyRequest } from 'fastify';
import { scopeAllows } from '../../shared/api-tokens.js';
import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import { LiveFrameLog } from '../../shared/live-frame-log.js';
import type { ApiContext } from '../api-context.js';
import { OTHERS_VIDEOS_SCOPE } from '../auth/scope-policy.js';
import type { ApiPrincipal } from '../auth/token-verifier.js';
import type { ReceivedUpload } from '../repositories/upload.repository.js';
import { assertVideoId } from '../services/video-query.service.js';
import { resolveVideoOptions } from '../services/video-request-options.js';

const TAGS = ['videos'];
const idParams = { type: 'object', properties: { id: { type: 'string', description: 'video id' } }, required: ['id'] } as const;

/** POST/GET/DELETE /v1/videos: submit, list, status, cancel. */
export function registerVideoRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post(
    '/v1/videos',
    {
      schema: {
        tags: TAGS,
        summary: 'Submit a video: multipart upload (field "file", plus option fields) or JSON { url, fps, classes, topK, merge, adapters }',
        description:
          'Options: fps (number), classes (array or comma list of class names), topK (adapters merged per scene), merge (linear|cat|svd), adapters (false = base model only). ' +
          'URLs must be http, https, rtsp or udp. The same submission (upload bytes or URL, and options) within STREAMSEG_DEDUP_SECONDS answers with the same id (200 instead of 201).',
        consumes: ['application/json', 'multipart/form-data'],
      },
    },
    async (request, reply) => {
      await ctx.limits.countSubmission(principalOf(request));
      const result = request.isMultipart() ? await submitMultipart(request, ctx) : await submitJson(request, ctx);
      const video = await ctx.queries.get(result.id);
      return reply
        .code(result.deduplicated ? 200 : 201)
        .header('location', `/v1/videos/${result.id}`)
        .send({ id: result.id, deduplicated: result.deduplicated, video });
    },
  );

  app.get(
    '/v1/videos',
    {
      schema: {
        tags: TAGS,
        summary: 'List videos, newest first, with status and progress per stage',
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }, offset: { type: 'integer', minimum: 0, default: 0 } },
        },
      },
    },
    async (request) => {
      const { limit, offset } = request.query as { limit: number; offset: number };
      return { videos: await ctx.queries.list(limit, offset) };
    },
  );

  app.get(
    '/v1/videos/:id',
    { schema: { tags: TAGS, summary: 'Status and progress per stage (decode, segment, sink) of one video', params: idParams } },
    async (request) => {
      const { id } = request.params as { id: string };
      return ctx.queries.get(id);
    },
  );

  app.post(
    '/v1/videos/:id/stop',
    {
      schema: {
        tags: TAGS,
        summary:
          'End a live video gracefully (as `streamseg stop`): the producer stops reading, the sink finishes its outputs and report; 409 E_NOT_LIVE for a file',
        params: idParams,
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const view = await ctx.queries.get(id);
      await assertMayChange(ctx, request, id, 'stop');
      if (!view.live) throw new HttpError(409, ErrorCode.NOT_LIVE, `video ${id} is not a live source: it ends by itself (DELETE cancels it)`);
      await new LiveFrameLog(ctx.redis, ctx.config.frameTtlSeconds).requestStop(id);
      return reply.code(202).send({ id, stopping: true });
    },
  );

  app.delete(
    '/v1/videos/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'Cancel a video: the producer stops, pending frame jobs are removed, its Redis keys are deleted (outputs already written stay on disk)',
        params: idParams,
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      assertVideoId(id);
      await assertMayChange(ctx, request, id, 'cancel');
      return ctx.cancels.cancel(id);
    },
  );
}

async function submitJson(request: FastifyRequest, ctx: ApiContext) {
  const body = request.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, ErrorCode.BAD_REQUEST, 'send multipart/form-data with a "file" field, or JSON { "url": "https://…" }');
  }
  const { url, ...options } = body as Record<string, unknown>;
  if (typeof url !== 'string' || url.length === 0) throw new HttpError(400, ErrorCode.BAD_REQUEST, 'JSON submissions need "url" (http, https, rtsp or udp)');
  return ctx.submissions.submitUrl(url, resolveVideoOptions(options, ctx.modelPackage?.manifest), principalOf(request));
}

async function submitMultipart(request: FastifyRequest, ctx: ApiContext) {
  const fields: Record<string, string> = {};
  let upload: ReceivedUpload | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file' || upload) {
          part.file.resume();
          throw new HttpError(400, ErrorCode.BAD_REQUEST, `unexpected file field "${part.fieldname}": send one video as "file"`);
        }
        upload = await ctx.uploads.receive(part.file, part.filename);
        if (part.file.truncated) throw tooLarge(ctx);
      } else if (part.valueTruncated) {
        throw new HttpError(400, ErrorCode.BAD_REQUEST, `field "${part.fieldname}" is longer than 64 KiB`);
      } else if (typeof part.value === 'string') {
        fields[part.fieldname] = part.value;
      }
    }
  } catch (error) {
    if (upload) await ctx.uploads.discard(upload.file);
    if (error instanceof Error && 'code' in error && error.code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(ctx);
    throw error;
  }
  if (!upload && fields.url)
    return ctx.submissions.submitUrl(fields.url, resolveVideoOptions(withoutUrl(fields), ctx.modelPackage?.manifest), principalOf(request));
  if (!upload) throw new HttpError(400, ErrorCode.BAD_REQUEST, 'no "file" field in the upload');
  let options;
  try {
    options = resolveVideoOptions(fields, ctx.modelPackage?.manifest);
  } catch (error) {
    await ctx.uploads.discard(upload.file);
    throw error;
  }
  return ctx.submissions.submitUpload(upload, options, principalOf(request));
}

function principalOf(request: FastifyRequest): ApiPrincipal {
  // The auth hook sets it on every route here; its absence is a wiring mistake, not a client's.
  if (!request.principal) throw new Error('no principal on an authenticated route');
  return request.principal;
}

/**
 * Stop and cancel: a `submit` token may act on the videos it submitted, an `admin` token on any.
 * A video submitted by the CLI (no owner recorded) is an operator's: admin only.
 */
async function assertMayChange(ctx: ApiContext, request: FastifyRequest, videoId: string, action: 'stop' | 'cancel'): Promise<void> {
  const principal = principalOf(request);
  if (scopeAllows(principal.scope, OTHERS_VIDEOS_SCOPE)) return;
  const owner = await ctx.usage.owner(videoId);
  if (owner === principal.id) return;
  throw new HttpError(
    403,
    ErrorCode.FORBIDDEN,
    `video ${videoId} was not submitted with this token: to ${action} another token's video, use a token with scope "${OTHERS_VIDEOS_SCOPE}"`,
  );
}

function withoutUrl(fields: Record<string, string>): Record<string, string> {
  const { url: _url, ...rest } = fields;
  return rest;
}

function tooLarge(ctx: ApiContext): HttpError {
  return new HttpError(413, ErrorCode.UPLOAD_TOO_LARGE, `the upload exceeds STREAMSEG_UPLOAD_MAX_BYTES (${ctx.config.uploadMaxBytes} bytes)`);
}
