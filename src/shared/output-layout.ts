import path from 'node:path';

/**
 * The files a sink writes into a video's output directory, and where the API and the CLI find
 * them. One place, so the writer and the readers cannot drift apart.
 */

/** A finished video's outputs, directly in its output directory. */
export const OUTPUT_FILES = { video: 'annotated.mp4', masks: 'masks.ndjson', report: 'report.json' } as const;

/** Subdirectory of a live video's rolling HLS output. */
export const LIVE_OUTPUT_DIR = 'live';

/** The live output's playlist, inside LIVE_OUTPUT_DIR. */
export const LIVE_PLAYLIST = 'index.m3u8';

/** Subdirectory of the closed segments of annotated.mp4 while it is written (each whole under its final name). */
export const SEGMENTS_DIR = '.annotated.segments';

/** A closed segment's file name: `seg-000003.mp4`. */
export const SEGMENT_FILE = /^seg-(\d{6})\.mp4$/;

/** The file name of closed segment `segment`. */
export function segmentFileName(segment: number): string {
  return `seg-${String(segment).padStart(6, '0')}.mp4`;
}

/** The segments directory of a video's output directory. */
export function segmentsDir(outDir: string): string {
  return path.join(outDir, SEGMENTS_DIR);
}
