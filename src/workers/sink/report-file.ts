import { rename, writeFile } from 'node:fs/promises';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import type { VideoState, VideoStateStore } from '../../shared/video-state.js';
import type { VideoReport } from './report-builder.js';

/**
 * The last step of both assemblies (file and live): reads the video's final state, builds
 * report.json from it, writes it whole (a `.partial` file renamed into place, so a reader never
 * sees half a report) and only then marks the video done.
 */
export async function writeReportAndFinish<R extends VideoReport>(
  states: VideoStateStore,
  videoId: string,
  file: string,
  build: (state: VideoState) => R,
): Promise<R> {
  const state = await states.get(videoId);
  if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${videoId} vanished from Redis before its report was written`);
  const report = build(state);
  await writeFile(`${file}.partial`, `${JSON.stringify(report, null, 2)}\n`);
  await rename(`${file}.partial`, file);
  await states.markDone(videoId);
  return report;
}
