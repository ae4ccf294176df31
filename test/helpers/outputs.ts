import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decode, decompress } from '../../src/workers/sink/coco-rle.js';
import type { MaskLine } from '../../src/workers/sink/mask-writer.js';
import type { VideoReport } from '../../src/workers/sink/report-builder.js';

/** What `streamseg run` / a sink writes into its output directory, parsed. */
export interface VideoOutputs {
  annotated: string;
  report: VideoReport;
  /** masks.ndjson, one parsed line per frame, in file order. */
  masks: MaskLine[];
}

export async function readOutputs(outDir: string): Promise<VideoOutputs> {
  const report = JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as VideoReport;
  const text = await readFile(path.join(outDir, 'masks.ndjson'), 'utf8');
  // NDJSON: every line ends with "\n", so the text ends with one and has no blank lines.
  if (!text.endsWith('\n')) throw new Error('masks.ndjson does not end with a newline');
  const masks = text
    .slice(0, -1)
    .split('\n')
    .map((line, i) => {
      if (line.trim() === '') throw new Error(`masks.ndjson line ${i + 1} is blank`);
      return JSON.parse(line) as MaskLine;
    });
  return { annotated: path.join(outDir, 'annotated.mp4'), report, masks };
}

/**
 * Decodes every class mask of one masks.ndjson line (COCO compressed RLE) and checks that
 * each covers exactly height × width pixels and that the classes partition the frame: every
 * pixel belongs to exactly one class. Returns the pixel count per class. Throws a
 * descriptive error otherwise.
 */
export function decodeFrameMasks(line: MaskLine, height: number, width: number): Record<string, number> {
  const coverage = new Uint8Array(height * width);
  const areas: Record<string, number> = {};
  for (const [name, rle] of Object.entries(line.masks)) {
    if (rle.size[0] !== height || rle.size[1] !== width) {
      throw new Error(`frame ${line.index} ${name}: RLE size ${rle.size.join('x')}, expected ${height}x${width}`);
    }
    const counts = decompress(rle).counts;
    const total = counts.reduce((a, b) => a + b, 0);
    if (total !== height * width) throw new Error(`frame ${line.index} ${name}: RLE counts sum to ${total}, ${height}x${width} = ${height * width}`);
    const mask = decode({ size: rle.size, counts });
    let area = 0;
    for (let p = 0; p < mask.length; p++) {
      if (mask[p] === 1) {
        coverage[p]!++;
        area++;
      }
    }
    if (area === 0) throw new Error(`frame ${line.index} ${name}: listed but empty (only present classes belong in masks)`);
    areas[name] = area;
  }
  const uncovered = coverage.findIndex((c) => c !== 1);
  if (uncovered !== -1) {
    throw new Error(`frame ${line.index}: pixel ${uncovered} is in ${coverage[uncovered]} class masks, expected exactly 1`);
  }
  return areas;
}
