import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../shared/logger.js';
import type { VideoStateStore } from '../../shared/video-state.js';
import type { UploadRepository } from '../repositories/upload.repository.js';

export interface UploadRetentionSettings {
  /** An upload is deleted this long after its video finished (done or failed). */
  retentionSeconds: number;
  /** An upload whose video is gone from Redis is deleted once older than this (the state lives this long). */
  orphanSeconds: number;
  /** A half-received upload (`.incoming-*`) left by a crash is deleted once older than this. */
  incomingSeconds: number;
  /** @defaultValue min(60 s, half the retention), at least 1 s */
  intervalMs?: number;
}

/** Upload names the repository gives: `<videoId>.<ext>`, or `.incoming-<random>` while received. */
const KEPT = /^(v[A-Za-z0-9_-]+)\.[a-z0-9]{1,8}$/;
const INCOMING = /^\.incoming-[0-9a-f]+$/;

/**
 * Deletes uploaded videos once their video has finished (STREAMSEG_UPLOAD_RETENTION_SECONDS); the
 * outputs stay. Every API process sweeps the upload directory now and then; two sweeping the same
 * shared directory at once do no harm.
 */
export class UploadRetentionService {
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<number>;
  private readonly intervalMs: number;

  constructor(
    private readonly uploads: UploadRepository,
    private readonly states: VideoStateStore,
    private readonly settings: UploadRetentionSettings,
    private readonly logger: Logger,
  ) {
    this.intervalMs = settings.intervalMs ?? Math.max(1000, Math.min(60_000, (settings.retentionSeconds * 1000) / 2));
  }

  start(): this {
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** One pass over the upload directory; returns how many files went. Never throws. */
  sweep(): Promise<number> {
    return (this.sweeping ??= this.sweepOnce()
      .catch((error: unknown) => {
        this.logger.warn({ err: error }, 'upload retention sweep failed');
        return 0;
      })
      .finally(() => (this.sweeping = undefined)));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    const names = await readdir(this.uploads.directory).catch(() => [] as string[]);
    const now = Date.now();
    let removed = 0;
    for (const name of names) {
      const file = path.join(this.uploads.directory, name);
      if (await this.expired(name, file, now)) {
        await this.uploads.discard(file);
        removed++;
      }
    }
    if (removed > 0) this.logger.info({ removed }, 'uploads past their retention deleted');
    return removed;
  }

  private async expired(name: string, file: string, now: number): Promise<boolean> {
    const kept = KEPT.exec(name);
    if (!kept && !INCOMING.test(name)) return false;
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) return false;
    const age = now - info.mtimeMs;
    if (!kept) return age > this.settings.incomingSeconds * 1000;
    const state = await this.states.get(kept[1]!);
    if (!state) return age > this.settings.orphanSeconds * 1000;
    if (state.status !== 'done' && state.status !== 'failed') return false;
    return now - (state.finishedAt ?? info.mtimeMs) >= this.settings.retentionSeconds * 1000;
  }
}
