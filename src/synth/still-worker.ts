import { parentPort, workerData } from 'node:worker_threads';
import { writeStillBatch } from './still-batch.js';
import type { StillSpec } from './still.js';

/** Worker-thread entry for `renderStills`: renders its share of stills, reports each one. */
export interface StillWorkerData {
  dir: string;
  specs: StillSpec[];
}

const data = workerData as StillWorkerData;
await writeStillBatch(data.dir, data.specs, (meta) => parentPort?.postMessage(meta));
