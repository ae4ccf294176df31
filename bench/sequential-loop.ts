/**
 * The sequential baseline of `npm run bench` (issue 16): the plain single-process loop a user
 * would write instead of streamseg, over the same model package, video, batch size, LoRA feeds
 * and outputs as the pipeline.
 *
 *   ffmpeg decode pipe (RGB24, source size, output fps)
 *     → resize to the model input the producer plans (planModelInput + LetterboxResizer)
 *     → ORT session.run per batch → argmax (the package's model.onnx fed its LoRA inputs, as the
 *       package documents them; the worker's folding of the branches is streamseg's own)
 *     → class map upscaled to the source size, class colours blended over the source frame
 *       (MaskUnletterboxer + OverlayRepository, as the sink does)
 *     → ffmpeg encode pipe with the sink's encoderArgs, and masks.ndjson with COCO RLE lines
 *       (maskLine, as the sink writes them).
 *
 * One batch after another: the loop waits for each step before the next. The only overlap is
 * what separate processes and pipes give without asking: ffmpeg decodes into its pipe while
 * the loop works (at most a pipe's worth ahead: the loop reads a frame only when it wants
 * one), and x264 encodes the frames already written while the loop computes the next batch.
 * No scene detection, no retrieval: one merged adapter (the caller's) for every frame.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import ort from 'onnxruntime-node';
import { LetterboxResizer } from '../src/producers/letterbox-resizer.js';
import { readRawFrames } from '../src/shared/media/raw-frame-reader.js';
import { MaskUnletterboxer } from '../src/shared/letterbox.js';
import { planModelInput } from '../src/shared/model-input-plan.js';
import type { ModelPackage } from '../src/shared/model-manifest.js';
import type { LoraFeeds } from '../src/workers/adapters/merged-adapter-cache.js';
import { argmaxMasks } from '../src/workers/segmentation/argmax.js';
import { ClassVocabulary } from '../src/workers/segmentation/class-vocabulary.js';
import { Preprocessor } from '../src/workers/segmentation/preprocess.js';
import { ClassRleEncoder } from '../src/workers/sink/coco-rle.js';
import { maskLine } from '../src/workers/sink/mask-writer.js';
import { OverlayRepository } from '../src/workers/sink/overlay.repository.js';
import { encoderArgs, type EncoderPreset } from '../src/workers/sink/video-encoder.repository.js';

/**
 * ffmpeg decoding a video to RGB24 at its own size and the output rate on stdout, as the
 * producer does: the bench's ceiling and the sequential loop decode alike.
 */
export function rawRgbDecodeArgs(video: string, width: number, height: number, fps: number): string[] {
  // prettier-ignore
  return ['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', video, '-an', '-vf', `scale=${width}:${height},fps=${fps}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
}

export interface SequentialLoopOptions {
  video: string;
  /** Source size; the decoder keeps it (as the producer does). */
  width: number;
  height: number;
  /** Output frame rate: the decoder's fps filter and the encoder's rate. */
  fps: number;
  pkg: ModelPackage;
  /** A session created with the worker's options (segmentationSessionOptions). */
  session: ort.InferenceSession;
  /** LoRA inputs fed with every batch, and the adapters they merge (for masks.ndjson). */
  lora: LoraFeeds;
  adapters: { name: string; weight: number }[];
  batchFrames: number;
  preset: EncoderPreset;
  overlayAlpha: number;
  /** annotated.mp4 and masks.ndjson are written here. */
  outDir: string;
}

export interface SequentialResult {
  frames: number;
  /** (frames − 1) / (first → last frame written to the encoder): the window of the pipeline's (a). */
  steadyFps: number;
  steadySeconds: number;
  /** Frames / (decoder spawned → encoder exited and masks.ndjson closed). */
  endToEndFps: number;
  wallSeconds: number;
  files: { video: string; masks: string };
  /** Wall ms spent in each step, summed over the run (the steps do not overlap in this loop). */
  stepMs: { decode: number; resize: number; infer: number; output: number };
}

/** Resolves when a child exits 0; rejects with its stderr otherwise. */
function exited(child: ChildProcess, name: string): Promise<void> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${name} exited with ${code ?? signal}: ${stderr.trim()}`))));
  });
}

/** Writes and waits for room, as any stream consumer should (fails if the process behind it died). */
async function write(stream: Writable, data: Uint8Array | string, child?: Promise<void>): Promise<void> {
  if (stream.write(data)) return;
  await Promise.race([
    once(stream, 'drain'),
    ...(child ? [child.then(() => Promise.reject(new Error('ffmpeg exited while the loop was writing to it')))] : []),
  ]);
}

export async function runSequentialLoop(options: SequentialLoopOptions): Promise<SequentialResult> {
  const { video, width, height, fps, pkg, session, lora, batchFrames } = options;
  const { manifest } = pkg;
  const plan = planModelInput(manifest.input, width, height);
  const resizer = new LetterboxResizer(width, height, plan);
  const pre = new Preprocessor({ ...manifest.input, width: plan.width, height: plan.height });
  const vocabulary = new ClassVocabulary(manifest).forJob();
  const unletterbox = new MaskUnletterboxer(plan.rect, plan.width, width, height);
  const overlay = new OverlayRepository(
    manifest.classes.map((c) => c.color),
    options.overlayAlpha,
  );
  const classNames = manifest.classes.map((c) => c.name);
  const rle = new ClassRleEncoder();
  const floats = new Float32Array(batchFrames * pre.frameFloats);
  const scratch = new Float32Array(plan.width * plan.height);
  const sourceMask = new Uint8Array(width * height);
  const modelMaskBytes = plan.width * plan.height;

  await mkdir(options.outDir, { recursive: true });
  const files = { video: path.join(options.outDir, 'annotated.mp4'), masks: path.join(options.outDir, 'masks.ndjson') };
  const started = performance.now();
  const decoder = spawn('ffmpeg', rawRgbDecodeArgs(options.video, width, height, fps), { stdio: ['ignore', 'pipe', 'pipe'] });

  const encoder = spawn('ffmpeg', encoderArgs({ width, height, fps, preset: options.preset }, files.video), { stdio: ['pipe', 'ignore', 'pipe'] });
  const decoded = exited(decoder, 'ffmpeg decode');
  const encoded = exited(encoder, 'ffmpeg encode');
  // Failures surface where they are awaited; these keep an early one from being unhandled.
  decoded.catch(() => undefined);
  encoded.catch(() => undefined);
  const masks = createWriteStream(files.masks);

  const stepMs = { decode: 0, resize: 0, infer: 0, output: 0 };
  let frames = 0;
  let firstWrite = 0;
  let lastWrite = 0;

  const segment = async (batch: Buffer[]) => {
    let t = performance.now();
    const count = batch.length;
    for (let slot = 0; slot < count; slot++) pre.write(await resizer.resize(batch[slot]!), floats, slot);
    stepMs.resize += performance.now() - t;

    t = performance.now();
    // ORT wants the data length to equal the shape: a short last batch gets a view.
    const data = count === batchFrames ? floats : floats.subarray(0, count * pre.frameFloats);
    const results = await session.run(
      {
        ...lora,
        [manifest.input.name]: new ort.Tensor('float32', data, [count, 3, plan.height, plan.width]),
        [manifest.classEmbeddings.input]: vocabulary.embeddings,
      },
      [manifest.output.name],
    );
    const logits = results[manifest.output.name]!;
    const modelMasks = argmaxMasks(logits.data as Float32Array, logits.dims, vocabulary.modelClassOf, scratch);
    stepMs.infer += performance.now() - t;

    t = performance.now();
    let lines = '';
    for (let slot = 0; slot < count; slot++) {
      const mask = modelMasks[slot]!;
      if (mask.length !== modelMaskBytes) throw new Error(`model mask has ${mask.length} bytes, ${plan.width}x${plan.height} expected`);
      unletterbox.apply(mask, sourceMask);
      await write(encoder.stdin!, await overlay.annotate(batch[slot]!, sourceMask, width, height), encoded);
      const index = frames++;
      const record = {
        index,
        timestampMs: (index * 1000) / fps,
        scene: 0,
        adapters: options.adapters,
        cacheHit: options.adapters.length > 0 ? true : null,
        inferenceMs: 0,
        workerId: 'sequential',
      };
      lines += `${JSON.stringify(maskLine(record, sourceMask, height, width, classNames, unletterbox.columnOffsets, rle))}\n`;
      lastWrite = performance.now();
      if (index === 0) firstWrite = lastWrite;
    }
    await write(masks, lines);
    stepMs.output += performance.now() - t;
  };

  try {
    let batch: Buffer[] = [];
    let t = performance.now();
    // reuseBuffer false: a batch keeps its source frames until they are blended.
    for await (const frame of readRawFrames(decoder.stdout!, width * height * 3, { reuseBuffer: false, name: video })) {
      batch.push(frame);
      if (batch.length < batchFrames) continue;
      stepMs.decode += performance.now() - t;
      await segment(batch);
      batch = [];
      t = performance.now();
    }
    stepMs.decode += performance.now() - t;
    if (batch.length > 0) await segment(batch);
    await decoded;
    encoder.stdin!.end();
    masks.end();
    await Promise.all([encoded, once(masks, 'close')]);
  } catch (error) {
    decoder.kill('SIGKILL');
    encoder.kill('SIGKILL');
    masks.destroy();
    throw error;
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const steadySeconds = (lastWrite - firstWrite) / 1000;
  return { frames, steadyFps: (frames - 1) / steadySeconds, steadySeconds, endToEndFps: frames / wallSeconds, wallSeconds, files, stepMs };
}
