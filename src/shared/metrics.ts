import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The process-wide Prometheus registry and the series every role reports into. */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'streamseg_process_' });

export const framesProcessed = new Counter({
  name: 'streamseg_frames_total',
  help: 'Frames handled, by pipeline stage',
  labelNames: ['stage'] as const,
  registers: [metricsRegistry],
});

export const jobFailures = new Counter({
  name: 'streamseg_job_failures_total',
  help: 'Failed jobs, by queue and error code',
  labelNames: ['queue', 'code'] as const,
  registers: [metricsRegistry],
});

export const inferenceSeconds = new Histogram({
  name: 'streamseg_inference_seconds',
  help: 'ONNX Runtime run time per batch',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [metricsRegistry],
});

export const endToEndSeconds = new Histogram({
  name: 'streamseg_video_end_to_end_seconds',
  help: 'Submission to finished outputs, per video',
  buckets: [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
  registers: [metricsRegistry],
});

export const framesDropped = new Counter({
  name: 'streamseg_frames_dropped_total',
  help: 'Frames decoded or announced that never reached the outputs, by reason (cancelled, failed; live: drop-oldest, keep-latest, every-nth, lost)',
  labelNames: ['reason'] as const,
  registers: [metricsRegistry],
});

export const stageSeconds = new Histogram({
  name: 'streamseg_stage_seconds',
  help: 'Time per job, by stage',
  labelNames: ['stage'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [metricsRegistry],
});

/**
 * Live videos: capture (the producer read the frame from the source) to output (the sink handed
 * it to the live outputs and the Redis Stream), per frame.
 */
export const liveLatencySeconds = new Histogram({
  name: 'streamseg_live_latency_seconds',
  help: 'Live videos: capture to output time per frame',
  buckets: [0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
  registers: [metricsRegistry],
});

export const liveReconnects = new Counter({
  name: 'streamseg_live_reconnects_total',
  help: 'Live sources reopened after they dropped',
  registers: [metricsRegistry],
});
