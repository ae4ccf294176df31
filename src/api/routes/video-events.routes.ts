import type { FastifyInstance } from 'fastify';
import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import type { ApiContext } from '../api-context.js';
import { FrameStreamReader, STREAM_ID } from '../repositories/frame-stream.reader.js';
import { assertVideoId } from '../services/video-query.service.js';
import type { VideoView } from '../services/video-view.js';

const HEARTBEAT_MS = 15_000;
const BLOCK_MS = 1000;
const BATCH = 200;

/**
 * GET /v1/videos/:id/events: Server-Sent Events. `progress` (the video view, whenever it
 * changes), `frame` (one frame record from the video's Redis Stream; its event id is the
 * stream entry id), then `done`, `failed` or `cancelled` and the end of the response.
 * Reconnecting with `Last-Event-ID` (or `?lastEventId=`) resumes after that frame.
 */
export function registerVideoEventRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/videos/:id/events',
    {
      schema: {
        tags: ['videos'],
        summary: 'Server-Sent Events: progress, frame records (event id = Redis Stream entry id), then done/failed/cancelled',
        params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        querystring: { type: 'object', properties: { lastEventId: { type: 'string', description: 'same as the Last-Event-ID header' } } },
        produces: ['text/event-stream'],
      },
    },
    async (request, reply) => {
      const id = assertVideoId((request.params as { id: string }).id);
      const header = request.headers['last-event-id'];
      const lastEventId = (Array.isArray(header) ? header[0] : header) ?? (request.query as { lastEventId?: string }).lastEventId ?? '0-0';
      if (!STREAM_ID.test(lastEventId)) throw new HttpError(400, ErrorCode.BAD_REQUEST, `Last-Event-ID "${lastEventId}" is not a stream entry id (<ms>-<seq>)`);
      const first = await ctx.queries.get(id);

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.flushHeaders();
      let open = true;
      const blocking = ctx.openBlockingConnection();
      blocking.on('error', () => undefined);
      const stop = () => {
        open = false;
        blocking.disconnect();
      };
      raw.on('close', stop);
      void ctx.closing.then(stop);
      const send = (event: string, data: unknown, eventId?: string) => {
        if (!open) return;
        raw.write(`${eventId ? `id: ${eventId}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      raw.write('retry: 2000\n\n');

      const reader = new FrameStreamReader(blocking);
      let cursor = lastEventId;
      let lastProgress = '';
      let lastBeat = Date.now();
      const progress = (view: VideoView) => {
        const text = JSON.stringify(view);
        if (text !== lastProgress) {
          lastProgress = text;
          send('progress', view);
        }
      };
      try {
        progress(first);
        while (open) {
          const view = await ctx.queries.find(id);
          if (!view) {
            send('failed', { id, status: 'unknown', error: `${ErrorCode.VIDEO_UNKNOWN}: video ${id} expired or was removed` });
            break;
          }
          progress(view);
          if (view.status === 'cancelled') {
            send('cancelled', view);
            break;
          }
          // Read what the sink wrote; block briefly only while more may come.
          const finished = view.status === 'done' || view.status === 'failed';
          const entries = await reader.readAfter(id, cursor, { blockMs: finished ? 1 : BLOCK_MS, count: BATCH });
          for (const entry of entries) {
            send('frame', entry.record, entry.id);
            cursor = entry.id;
          }
          if (finished && entries.length === 0) {
            send(view.status, view);
            break;
          }
          if (Date.now() - lastBeat >= HEARTBEAT_MS) {
            lastBeat = Date.now();
            if (open) raw.write(': keep-alive\n\n');
          }
        }
      } catch (error) {
        if (open) ctx.logger.warn({ err: error, videoId: id }, 'event stream failed');
        send('error', { error: ctx.paths.scrub(error instanceof Error ? error.message : String(error)) });
      } finally {
        stop();
        raw.end();
      }
    },
  );
}
