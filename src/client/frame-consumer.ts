import os from 'node:os';
import type { RedisConnection } from '../shared/redis.js';
import { ErrorCode, StreamsegError } from '../shared/errors/index.js';
import type { FrameResult } from '../shared/frame-store.js';
import { videoKeys } from '../shared/redis-keys.js';
import { entriesOfFirstStream } from '../shared/stream-reply.js';
import type { VideoStateStore } from '../shared/video-state.js';

export interface FrameConsumerOptions {
  /** Consumer group: consumers of one group share the records (each goes to one of them). @defaultValue 'streamseg' */
  group?: string;
  /**
   * This consumer's name in the group. A consumer restarted under the same name first gets the
   * records it had received but not acknowledged. @defaultValue the host name
   */
  consumer?: string;
  /** Records fetched per round trip. @defaultValue 32 */
  count?: number;
  /** How long one read waits for new records before re-checking the video's status. @defaultValue 1000 */
  blockMs?: number;
  /**
   * Acknowledge a record when the next one is asked for (the loop body finished with it).
   * Off: call `delivery.ack()` yourself. @defaultValue true
   */
  autoAck?: boolean;
  /**
   * Take over records another consumer of the group received and left unacknowledged for at
   * least this long (XAUTOCLAIM), e.g. one that died and will not come back under its name.
   * Unset: only this consumer's own pending records are re-read.
   */
  claimIdleMs?: number;
  /** Stops the iteration (between reads). */
  signal?: AbortSignal;
}

/** One frame record delivered to this consumer. */
export interface FrameDelivery {
  /** Redis Stream entry id. */
  id: string;
  record: FrameResult;
  /** Whether it was delivered before (a restarted consumer re-reading its unacknowledged records). */
  redelivered: boolean;
  /** Acknowledges it (XACK): it will not be delivered again. Idempotent. */
  ack(): Promise<void>;
}

/**
 * Reads a video's frame records (the sink's Redis Stream) through a consumer group: XREADGROUP
 * from the consumer's own pending list first (records received but not acknowledged by an
 * earlier run), then new records, and XACK once each is handled. Each record is handled
 * exactly once across restarts when it is acknowledged right after it is handled; a consumer
 * killed between handling and acknowledging gets that one record again (flagged `redelivered`).
 * Ends when the video is done or failed and every record has been delivered.
 */
export class FrameConsumer implements AsyncIterable<FrameDelivery> {
  private readonly group: string;
  private readonly consumer: string;
  private readonly count: number;
  private readonly blockMs: number;
  private readonly autoAck: boolean;
  private readonly key: string;

  constructor(
    private readonly videoId: string,
    /** Held by blocking reads: a connection of its own. */
    private readonly redis: RedisConnection,
    private readonly states: VideoStateStore,
    private readonly ttlSeconds: number,
    private readonly options: FrameConsumerOptions = {},
  ) {
    this.group = options.group ?? 'streamseg';
    this.consumer = options.consumer ?? os.hostname();
    this.count = options.count ?? 32;
    this.blockMs = options.blockMs ?? 1000;
    this.autoAck = options.autoAck ?? true;
    if (!(this.count >= 1)) throw new RangeError('count must be at least 1');
    if (!(this.blockMs >= 1)) throw new RangeError('blockMs must be at least 1');
    this.key = videoKeys(videoId).stream;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<FrameDelivery> {
    await this.ensureGroup();
    let previous: FrameDelivery | undefined;
    const handOver = async function* (this: FrameConsumer, batch: FrameDelivery[]): AsyncGenerator<FrameDelivery> {
      for (const delivery of batch) {
        if (previous && this.autoAck) await previous.ack();
        previous = delivery;
        yield delivery;
      }
    }.bind(this);

    if (this.options.claimIdleMs !== undefined) await this.claimAbandoned(this.options.claimIdleMs);
    // 1. What an earlier run of this consumer received (or it claimed) and did not acknowledge.
    let cursor = '0';
    for (;;) {
      const batch = await this.read(cursor, false, true);
      if (batch.length === 0) break;
      cursor = batch[batch.length - 1]!.id;
      yield* handOver(batch);
    }
    // 2. New records, until the video is finished and nothing is left.
    for (;;) {
      this.options.signal?.throwIfAborted();
      const batch = await this.read('>', true, false);
      if (batch.length > 0) {
        yield* handOver(batch);
        continue;
      }
      const state = await this.states.get(this.videoId);
      if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${this.videoId} is gone from Redis (cancelled or expired)`);
      if (state.status === 'done' || state.status === 'failed') {
        // The sink appends every record before it marks the video done: one last read drains them.
        const rest = await this.read('>', false, false);
        if (rest.length === 0) break;
        yield* handOver(rest);
      }
    }
    if (previous && this.autoAck) await previous.ack();
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.key, this.group, '0', 'MKSTREAM');
      // MKSTREAM made the key if the sink had not yet: give it the TTL every key of a video has.
      if ((await this.redis.ttl(this.key)) === -1) await this.redis.expire(this.key, this.ttlSeconds);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
  }

  /** Moves other consumers' records idle for at least `minIdleMs` into this consumer's pending list. */
  private async claimAbandoned(minIdleMs: number): Promise<void> {
    let cursor = '0-0';
    do {
      const reply = (await this.redis.xautoclaim(this.key, this.group, this.consumer, minIdleMs, cursor, 'COUNT', this.count, 'JUSTID')) as unknown[];
      cursor = String(reply[0] ?? '0-0');
    } while (cursor !== '0-0');
  }

  private async read(id: string, block: boolean, redelivered: boolean): Promise<FrameDelivery[]> {
    let reply: unknown;
    try {
      const args: (string | number)[] = ['GROUP', this.group, this.consumer, 'COUNT', this.count];
      if (block) args.push('BLOCK', this.blockMs);
      args.push('STREAMS', this.key, id);
      reply = await this.redis.call('xreadgroup', ...args);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('NOGROUP')) {
        throw new StreamsegError(ErrorCode.VIDEO_GONE, `the frame stream of video ${this.videoId} is gone (cancelled or expired)`, { cause: error });
      }
      throw error;
    }
    const out: FrameDelivery[] = [];
    for (const [entryId, fields] of entriesOfFirstStream(reply)) {
      // A pending entry trimmed from the stream comes back without fields: nothing to deliver.
      const at = fields ? fields.indexOf('record') : -1;
      if (!fields || at < 0) {
        await this.ackId(entryId);
        continue;
      }
      let acked: Promise<void> | undefined;
      out.push({
        id: entryId,
        record: JSON.parse(fields[at + 1]!) as FrameResult,
        redelivered,
        ack: () => (acked ??= this.ackId(entryId)),
      });
    }
    return out;
  }

  private async ackId(entryId: string): Promise<void> {
    await this.redis.xack(this.key, this.group, entryId);
  }
}
