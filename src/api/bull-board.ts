import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { redactDeep } from '../shared/redact-credentials.js';

export const BULL_BOARD_PATH = '/admin/queues';

/** bull-board over every queue at /admin/queues, behind the same token check as the API (cookie or header; admin scope). */
export async function registerBullBoard(app: FastifyInstance, queues: readonly Queue[]): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  // Job data holds the source URL as submitted: shown with its credentials replaced.
  const adapters = queues.map((q) => {
    const adapter = new BullMQAdapter(q);
    adapter.setFormatter('data', (data: unknown) => redactDeep(data));
    adapter.setFormatter('returnValue', (value: unknown) => redactDeep(value));
    return adapter;
  });
  createBullBoard({ queues: adapters, serverAdapter, options: { uiConfig: { boardTitle: 'streamseg queues' } } });
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}
