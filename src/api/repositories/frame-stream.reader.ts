import type { RedisConnection } from '../../shared/redis.js';
import type { FrameResult } from '../../shared/frame-store.js';
import { videoKeys } from '../../shared/redis-keys.js';
import { entriesOfFirstStream, type RawStreamEntry } from '../../shared/stream-reply.js';

export interface StreamEntry {
  /** Redis Stream entry id (`<ms>-<seq>`): the SSE event id, so Last-Event-ID resumes after it. */
  id: string;
  record: FrameResult;
}

/** Stream entry ids as Redis writes them; `0` and `0-0` mean "from the start". */
export const STREAM_ID = /^\d+(-\d+)?$/;

/** Reads a video's frame records (written by the sink) after a given entry id, blocking briefly. */
export class FrameStreamReader {
  /** `blocking` is held by XREAD BLOCK: give each reader its own connection. */
  constructor(private readonly blocking: RedisConnection) {}

  async readAfter(videoId: string, afterId: string, options: { blockMs: number; count: number }): Promise<StreamEntry[]> {
    const reply: unknown = await this.blocking.xread('COUNT', options.count, 'BLOCK', options.blockMs, 'STREAMS', videoKeys(videoId).stream, afterId);
    return parseEntries(entriesOfFirstStream(reply));
  }
}

/** Field list `['record', json]` → StreamEntry; entries without a record field are skipped. */
export function parseEntries(entries: RawStreamEntry[]): StreamEntry[] {
  const out: StreamEntry[] = [];
  for (const [id, fields] of entries) {
    const at = fields ? fields.indexOf('record') : -1;
    const json = fields && at >= 0 ? fields[at + 1] : undefined;
    if (json !== undefined) out.push({ id, record: JSON.parse(json) as FrameResult });
  }
  return out;
}
