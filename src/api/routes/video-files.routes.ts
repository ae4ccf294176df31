import { createReadStream } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import { LIVE_OUTPUT_DIR, OUTPUT_FILES } from '../../shared/output-layout.js';
import type { ApiContext } from '../api-context.js';
import { parseRange } from '../file-range.js';
import { HlsRepository } from '../repositories/hls.repository.js';
import { assertVideoId } from '../services/video-query.service.js';

/** What the live sink's ffmpeg HLS muxer writes: index.m3u8 and index<N>.ts. */
const LIVE_HLS_FILE = /^[A-Za-z0-9_-]{1,64}\.(m3u8|ts)$/;

const FILES: Record<string, { file: string; type: string }> = {
  'annotated.mp4': { file: OUTPUT_FILES.video, type: 'video/mp4' },
  'masks.ndjson': { file: OUTPUT_FILES.masks, type: 'application/x-ndjson' },
  'report.json': { file: OUTPUT_FILES.report, type: 'application/json' },
};

/** The outputs of a video: annotated.mp4 (range requests), masks.ndjson, report.json, and HLS while it is produced. */
export function registerVideoFileRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const [name, spec] of Object.entries(FILES)) {
    app.get(
      `/v1/videos/:id/${name}`,
      {
        schema: {
          tags: ['outputs'],
          summary: `The video's ${name}${name.endsWith('.mp4') ? ' (Range requests: 206 Partial Content)' : ''}; 404 E_OUTPUT_NOT_READY until the sink has written it`,
          params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        },
      },
      async (request, reply) => {
        const id = assertVideoId((request.params as { id: string }).id);
        return sendFile(ctx, request, reply, await outDirOf(ctx, id), spec.file, spec.type, id);
      },
    );
  }

  const hls = new HlsRepository();
  app.get(
    '/v1/videos/:id/hls/:file',
    {
      schema: {
        tags: ['outputs'],
        summary:
          "HLS of the annotated stream while it is produced: index.m3u8 and its segments. Files: a live EVENT playlist of the sink's closed segments (seg-NNNNNN.ts, remuxed), annotated.mp4 once done. Live sources: the sink's rolling low-latency playlist",
        params: { type: 'object', properties: { id: { type: 'string' }, file: { type: 'string' } }, required: ['id', 'file'] },
      },
    },
    async (request, reply) => {
      const { id, file } = request.params as { id: string; file: string };
      assertVideoId(id);
      const view = await ctx.queries.get(id);
      if (view.live) {
        // A live source's sink writes its own rolling low-latency HLS (playlist and .ts files).
        if (!LIVE_HLS_FILE.test(file)) throw new HttpError(404, ErrorCode.NOT_FOUND, `no HLS file ${file}`);
        const type = file.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t';
        reply.header('cache-control', file.endsWith('.m3u8') ? 'no-cache' : 'max-age=60');
        return sendFile(ctx, request, reply, await outDirOf(ctx, id), path.join(LIVE_OUTPUT_DIR, file), type, id);
      }
      if (view.status === 'done') throw new HttpError(404, ErrorCode.NOT_FOUND, `video ${id} is finished: play ${view.outputs.annotated}`);
      const segments = await hls.segments(await outDirOf(ctx, id));
      if (file === 'index.m3u8') {
        return reply
          .header('content-type', 'application/vnd.apple.mpegurl')
          .header('cache-control', 'no-cache')
          .send(hls.playlist(segments, view.status === 'failed' || view.status === 'cancelled'));
      }
      const match = /^seg-(\d{6})\.ts$/.exec(file);
      const segment = match ? segments[Number(match[1])] : undefined;
      if (!segment) throw new HttpError(404, ErrorCode.NOT_FOUND, `no HLS segment ${file} of video ${id} (yet)`);
      return reply.header('content-type', 'video/mp2t').header('cache-control', 'max-age=3600').send(hls.transportStream(segment));
    },
  );
}

/** The video's output directory: from its state while Redis has it, else the API's default layout. */
async function outDirOf(ctx: ApiContext, id: string): Promise<string> {
  const state = await ctx.pipeline.states.get(id);
  return state?.outDir ?? path.resolve(ctx.config.outDir, id);
}

/**
 * A regular file whose real path lies inside the video's output directory, or undefined: a
 * symlink placed there (to /etc/hostname, to another video) is not followed out of it.
 */
async function confinedFile(root: string, relative: string): Promise<string | undefined> {
  const [realRoot, real] = await Promise.all([realpath(root).catch(() => undefined), realpath(path.join(root, relative)).catch(() => undefined)]);
  if (!realRoot || !real || !real.startsWith(realRoot + path.sep)) return undefined;
  return real;
}

async function sendFile(ctx: ApiContext, request: FastifyRequest, reply: FastifyReply, root: string, relative: string, type: string, videoId: string) {
  const confined = await confinedFile(root, relative);
  const file = confined ?? path.join(root, relative);
  const info = confined ? await lstat(confined).catch(() => null) : null;
  if (!info?.isFile()) {
    const view = await ctx.queries.find(videoId);
    if (view && view.status !== 'done')
      throw new HttpError(404, ErrorCode.OUTPUT_NOT_READY, `${path.basename(file)} of video ${videoId} is not written yet (status ${view.status})`);
    throw new HttpError(404, ErrorCode.NOT_FOUND, `video ${videoId} has no ${path.basename(file)}`);
  }
  const size = info.size;
  const etag = `"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  reply.header('accept-ranges', 'bytes').header('content-type', type).header('etag', etag).header('last-modified', info.mtime.toUTCString());
  const ifRange = request.headers['if-range'];
  const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.range, size);
  if (range === 'unsatisfiable') {
    return reply.code(416).header('content-range', `bytes */${size}`).send();
  }
  if (range) {
    reply
      .code(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
      .header('content-length', range.end - range.start + 1);
    return reply.send(request.method === 'HEAD' ? undefined : createReadStream(file, { start: range.start, end: range.end }));
  }
  reply.header('content-length', size);
  return reply.send(request.method === 'HEAD' ? undefined : createReadStream(file));
}
