import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../api-context.js';

const PING_TIMEOUT_MS = 1000;

/** /healthz: the process answers. /readyz: and Redis answers PING (no token needed for either). */
export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness: 200 while the process serves requests', security: [] } }, async () => ({ ok: true }));
  app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: 200 when Redis answers PING, else 503', security: [] } }, async (_request, reply) => {
    const ready = await Promise.race([
      ctx.redis.ping().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => setTimeout(resolve, PING_TIMEOUT_MS, false).unref()),
    ]);
    return reply.code(ready ? 200 : 503).send({ ok: ready, redis: ready ? 'ready' : 'unreachable' });
  });
}
