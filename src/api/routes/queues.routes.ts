import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../api-context.js';

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;

/** GET /v1/queues: job counts per state and connected workers of every queue (what `streamseg status` prints). */
export function registerQueueRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/queues', { schema: { tags: ['monitoring'], summary: 'Job counts per state and the workers connected to every queue' } }, async () => {
    const queues = await Promise.all(
      Object.values(ctx.pipeline.queues).map(async (queue) => {
        const [counts, workers, paused] = await Promise.all([queue.getJobCounts(...STATES), queue.getWorkers(), queue.isPaused()]);
        return {
          name: queue.name,
          paused,
          counts: Object.fromEntries(STATES.map((s) => [s, counts[s] ?? 0])),
          workers: workers.map((w) => ({ name: w.name ?? '', addr: w.addr ?? '', ageSeconds: Number(w.age ?? 0), idleSeconds: Number(w.idle ?? 0) })),
        };
      }),
    );
    return { queues };
  });
}
