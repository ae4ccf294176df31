import type { FastifyInstance } from 'fastify';
import type { ClusterMetricsService } from '../services/cluster-metrics.service.js';

/** GET /metrics: Prometheus text format, the whole cluster's series (bearer token required). */
export function registerMetricsRoutes(app: FastifyInstance, metrics: ClusterMetricsService): void {
  app.get(
    '/metrics',
    { schema: { tags: ['monitoring'], summary: 'Prometheus metrics of every process (aggregated through Redis) and the queues', produces: ['text/plain'] } },
    async (_request, reply) => {
      const body = await metrics.render();
      return reply.header('content-type', metrics.contentType).send(body);
    },
  );
}
