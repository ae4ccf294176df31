/** The streamseg package: a Node client for a streamseg cluster, and the API server factory. */
export { StreamsegClient, type StreamsegClientOptions, type ClientSubmitOptions } from './client/streamseg-client.js';
export { FrameConsumer, type FrameConsumerOptions, type FrameDelivery } from './client/frame-consumer.js';
export { createApiServer, type ApiServer, type ApiServerOptions } from './api/server.js';
export type { FrameResult } from './shared/frame-store.js';
export type { VideoState, VideoStatus } from './shared/video-state.js';
export type { RetrievalOverrides } from './shared/retrieval-options.js';
export { StreamsegError } from './shared/errors/index.js';
