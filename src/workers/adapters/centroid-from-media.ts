import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { ErrorCode, FfmpegError, InputError } from '../../shared/errors/index.js';
import { runMedia } from '../../shared/media/media-process.js';
import { planModelInput } from '../../shared/model-input-plan.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { OnnxEmbedder, meanEmbedding } from './embedder.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff']);

export interface CentroidOptions {
  /** Most frames sampled from a video (evenly, at `videoFps`). @defaultValue 32 */
  maxFrames?: number;
  /** Sampling rate for videos, frames per second. @defaultValue 2 */
  videoFps?: number;
}

/** Images given as files or directories of images, sorted, or frames sampled from one video. */
async function collectImages(inputs: readonly string[], workDir: string, options: Required<CentroidOptions>): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const info = await stat(input).catch((cause: unknown) => {
      throw new InputError(ErrorCode.INPUT_NOT_FOUND, `${input}: not found (--centroid-from takes a video, image files or a directory of images)`, { cause });
    });
    if (info.isDirectory()) {
      const names = (await readdir(input)).filter((n) => IMAGE_EXTENSIONS.has(path.extname(n).toLowerCase())).sort();
      files.push(...names.map((n) => path.join(input, n)));
    } else if (IMAGE_EXTENSIONS.has(path.extname(input).toLowerCase())) {
      files.push(input);
    } else {
      files.push(...(await sampleVideo(input, workDir, options)));
    }
  }
  if (files.length === 0) throw new InputError(ErrorCode.INPUT_EMPTY, `no images found in ${inputs.join(', ')}`);
  return files.slice(0, options.maxFrames);
}

async function sampleVideo(file: string, workDir: string, options: Required<CentroidOptions>): Promise<string[]> {
  const dir = path.join(workDir, `v${Math.random().toString(36).slice(2)}`);
  const args = ['-v', 'error', '-nostdin', '-i', file, '-vf', `fps=${options.videoFps}`, '-frames:v', String(options.maxFrames), path.join(dir, '%05d.png')];
  await mkdir(dir, { recursive: true });
  const { code, lastLine, spawnError } = await runMedia('ffmpeg', args);
  if (spawnError) throw new FfmpegError(`cannot run ffmpeg (${spawnError.message}): install it to compute centroids from videos`, { cause: spawnError });
  if (code !== 0) throw new InputError(ErrorCode.INPUT_NOT_VIDEO, `${file}: not an image or a decodable video (${lastLine || `exit ${code}`})`);
  const names = (await readdir(dir)).sort();
  if (names.length === 0) throw new InputError(ErrorCode.INPUT_EMPTY, `${file}: no frames decoded`);
  return names.map((n) => path.join(dir, n));
}

/**
 * The domain centroid of an adapter: the mean embedding (L2-normalised) of images or video
 * frames of its domain, each resized to its model input (planModelInput) and embedded on its content only,
 * as the workers embed scenes.
 */
export async function centroidFromMedia(
  pkg: ModelPackage,
  inputs: readonly string[],
  options: CentroidOptions = {},
): Promise<{ centroid: number[]; frames: number }> {
  const settings = { maxFrames: options.maxFrames ?? 32, videoFps: options.videoFps ?? 2 };
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-centroid-'));
  const embedder = await OnnxEmbedder.create(pkg);
  try {
    const files = await collectImages(inputs, workDir, settings);
    const embeddings: Float32Array[] = [];
    for (const file of files) {
      const image = sharp(file, { failOn: 'error' });
      const meta = await image.metadata();
      if (!meta.width || !meta.height) throw new InputError(ErrorCode.INPUT_DECODE, `${file}: cannot read its size`);
      const plan = planModelInput(pkg.manifest.input, meta.width, meta.height);
      const { width, height, rect } = plan;
      let scaled = image.removeAlpha().resize(rect.width, rect.height, { fit: 'fill' });
      if (rect.width !== width || rect.height !== height) {
        scaled = scaled.extend({
          left: rect.x,
          top: rect.y,
          right: width - rect.width - rect.x,
          bottom: height - rect.height - rect.y,
          background: { r: 0, g: 0, b: 0 },
        });
      }
      const rgb = await scaled.raw().toBuffer();
      embeddings.push(...(await embedder.embedFrames([rgb], plan, rect)));
    }
    return { centroid: Array.from(meanEmbedding(embeddings)), frames: embeddings.length };
  } finally {
    await embedder.close();
    await rm(workDir, { recursive: true, force: true });
  }
}
