import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import sharp, { type OutputInfo } from 'sharp';
import { z } from 'zod';
import { FfmpegRepository } from '../producers/ffmpeg.repository.js';
import { StreamsegError } from '../shared/errors/index.js';
import { decodeClassMask, RleDecodeError } from './coco-rle-decode.js';
import { Confusion, IGNORE_INDEX } from './miou.js';

/**
 * `streamseg score`: the masks a run wrote (masks.ndjson) against the ground truth a synth
 * render wrote (FILE.masks/NNNNNN.png, FILE.scenes.json), as mIoU per ground-truth scene and
 * over the whole video, optionally next to a baseline run and with one picture per scene.
 */

export type ScoreErrorCode = 'E_SCORE_NOT_FOUND' | 'E_SCORE_INPUT';

/** An input of `streamseg score` is missing or unreadable; the message names it and what to do. */
export class ScoreError extends StreamsegError {
  constructor(code: ScoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

const truthScenesSchema = z.object({
  frames: z.number().int().min(0).optional(),
  /** Class names by mask value (synth writes CLASS_NAMES). */
  classes: z.array(z.string()).min(1).max(255),
  scenes: z
    .array(
      z.object({
        index: z.number().int().min(0),
        startFrame: z.number().int().min(0),
        endFrame: z.number().int().min(0),
        condition: z.string(),
      }),
    )
    .min(1),
});
export type TruthScenes = z.infer<typeof truthScenesSchema>;
export type TruthScene = TruthScenes['scenes'][number];

const maskLineSchema = z.object({
  index: z.number().int().min(0),
  size: z.tuple([z.number().int().min(1), z.number().int().min(1)]),
  adapters: z.array(z.object({ name: z.string(), weight: z.number() })),
  masks: z.record(z.string(), z.object({ size: z.tuple([z.number().int(), z.number().int()]), counts: z.string() })),
});
/** The fields of a masks.ndjson line that scoring reads. */
export type ScoredMaskLine = z.infer<typeof maskLineSchema>;

/** `demo/street.masks` → `demo/street` (where synth put the .mp4 and .scenes.json). */
export function truthStem(truthDir: string): string {
  return truthDir.replace(/[\\/]+$/, '').replace(/\.masks$/i, '');
}

async function kindOf(p: string): Promise<'file' | 'dir' | null> {
  const info = await stat(p).catch(() => null);
  return info === null ? null : info.isDirectory() ? 'dir' : 'file';
}

/** Throws E_SCORE_NOT_FOUND unless `p` is a directory; `hint` says what to do. */
export async function requireDir(p: string, what: string, hint: string): Promise<void> {
  const kind = await kindOf(p);
  if (kind !== 'dir') throw new ScoreError('E_SCORE_NOT_FOUND', `${p}: ${kind === 'file' ? 'not a directory' : 'no such directory'} (${what}); ${hint}`);
}

/** Throws E_SCORE_NOT_FOUND unless `p` is a file; `hint` says what to do. */
export async function requireFile(p: string, what: string, hint: string): Promise<void> {
  const kind = await kindOf(p);
  if (kind !== 'file') throw new ScoreError('E_SCORE_NOT_FOUND', `${p}: ${kind === 'dir' ? 'a directory, not a file' : 'no such file'} (${what}); ${hint}`);
}

export async function readTruthScenes(file: string): Promise<TruthScenes> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new ScoreError('E_SCORE_INPUT', `${file}: not readable JSON; give --scenes the FILE.scenes.json streamseg synth wrote`, { cause });
  }
  const parsed = truthScenesSchema.safeParse(json);
  if (!parsed.success) {
    const problem = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ScoreError('E_SCORE_INPUT', `${file}: not a synth scenes file (${problem}); give --scenes the FILE.scenes.json streamseg synth wrote`);
  }
  return parsed.data;
}

/** masks.ndjson, line by line, each checked; a bad line is E_SCORE_INPUT naming file and line. */
export async function* readMaskLines(file: string): AsyncGenerator<ScoredMaskLine> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new ScoreError('E_SCORE_INPUT', `${file} line ${n}: not JSON; is it a masks.ndjson written by streamseg run?`, { cause });
    }
    const parsed = maskLineSchema.safeParse(json);
    if (!parsed.success) {
      const problem = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      throw new ScoreError('E_SCORE_INPUT', `${file} line ${n}: not a masks.ndjson line (${problem})`);
    }
    yield parsed.data;
  }
}

/**
 * How ground-truth values map onto the model's classes: by name. `lut[v]` is the model class
 * index of ground-truth value v, or IGNORE_INDEX (not scored) for a name the model lacks.
 */
export interface ClassMapping {
  lut: Uint8Array;
  /** Model class names, by model index (the confusion matrix's classes). */
  modelClasses: readonly string[];
  /** Ground-truth class names the model does not have (their pixels are not scored). */
  unmatched: string[];
}

export function mapClasses(truthClasses: readonly string[], modelClasses: readonly string[]): ClassMapping {
  const lut = new Uint8Array(256).fill(IGNORE_INDEX);
  const unmatched: string[] = [];
  truthClasses.forEach((name, value) => {
    const index = modelClasses.indexOf(name);
    if (index >= 0 && index < IGNORE_INDEX) lut[value] = index;
    else unmatched.push(name);
  });
  return { lut, modelClasses, unmatched };
}

export function truthMaskPath(truthDir: string, index: number): string {
  return path.join(truthDir, `${String(index).padStart(6, '0')}.png`);
}

/** A ground-truth PNG as model class indices (IGNORE_INDEX where not scored), row-major. */
export async function readTruthMask(truthDir: string, index: number, height: number, width: number, lut: Uint8Array): Promise<Uint8Array> {
  const file = truthMaskPath(truthDir, index);
  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true }));
  } catch (cause) {
    const missing = (await kindOf(file)) === null;
    throw new ScoreError(
      missing ? 'E_SCORE_NOT_FOUND' : 'E_SCORE_INPUT',
      missing
        ? `${file}: no such file (ground truth of frame ${index}); --truth must be the FILE.masks directory of the video that was run`
        : `${file}: not a readable PNG (ground truth of frame ${index})`,
      { cause },
    );
  }
  if (info.width !== width || info.height !== height) {
    throw new ScoreError(
      'E_SCORE_INPUT',
      `${file} is ${info.width}x${info.height}, the frame's masks are ${width}x${height}; --truth must belong to the video that was run`,
    );
  }
  const out = new Uint8Array(width * height);
  for (let i = 0, o = 0; i < out.length; i++, o += info.channels) out[i] = lut[data[o]!]!;
  return out;
}

/** The mask of one masks.ndjson line as model class indices (IGNORE_INDEX for unknown names). */
export function predictionMask(line: ScoredMaskLine, modelClasses: readonly string[], file: string): Uint8Array {
  const [h, w] = line.size;
  try {
    return decodeClassMask(line.masks, h, w, (name) => {
      const i = modelClasses.indexOf(name);
      return i < 0 ? undefined : i;
    });
  } catch (error) {
    if (error instanceof RleDecodeError) throw new ScoreError('E_SCORE_INPUT', `${file}: frame ${line.index}: ${error.message}`, { cause: error });
    throw error;
  }
}

/** What one run scored: per ground-truth scene (by position in `scenes`) and overall. */
export interface RunScore {
  scenes: Confusion[];
  whole: Confusion;
  /** Frames scored per scene. */
  frames: number[];
  /** Sum over a scene's frames of each adapter's weight ('base' for frames without adapters). */
  mix: Map<string, number>[];
  /** Predictions of the frames asked for in `keep`, as model class indices. */
  kept: Map<number, Uint8Array>;
  /** [height, width] of the frames. */
  size: [number, number] | null;
}

export const BASE_NAME = 'base';

/** Scores `<outDir>/masks.ndjson` against `truthDir` (see ScoreError for what fails). */
export async function scoreRun(options: {
  masksFile: string;
  truthDir: string;
  scenes: readonly TruthScene[];
  mapping: ClassMapping;
  keep?: ReadonlySet<number>;
}): Promise<RunScore> {
  const { masksFile, truthDir, scenes, mapping } = options;
  const k = mapping.modelClasses.length;
  const result: RunScore = {
    scenes: scenes.map(() => new Confusion(k)),
    whole: new Confusion(k),
    frames: scenes.map(() => 0),
    mix: scenes.map(() => new Map()),
    kept: new Map(),
    size: null,
  };
  let lines = 0;
  for await (const line of readMaskLines(masksFile)) {
    lines++;
    const s = scenes.findIndex((scene) => line.index >= scene.startFrame && line.index < scene.endFrame);
    if (s < 0) continue; // a frame past the ground truth's scenes (e.g. a longer run) is not scored
    const [h, w] = line.size;
    result.size ??= [h, w];
    const pred = predictionMask(line, mapping.modelClasses, masksFile);
    const gt = await readTruthMask(truthDir, line.index, h, w, mapping.lut);
    result.scenes[s]!.add(gt, pred);
    result.whole.add(gt, pred);
    result.frames[s]!++;
    const mix = result.mix[s]!;
    if (line.adapters.length === 0) mix.set(BASE_NAME, (mix.get(BASE_NAME) ?? 0) + 1);
    for (const a of line.adapters) mix.set(a.name, (mix.get(a.name) ?? 0) + a.weight);
    if (options.keep?.has(line.index)) result.kept.set(line.index, pred);
  }
  if (lines === 0) throw new ScoreError('E_SCORE_INPUT', `${masksFile} holds no frames; did streamseg run finish?`);
  if (result.frames.every((f) => f === 0)) {
    throw new ScoreError(
      'E_SCORE_INPUT',
      `no frame of ${masksFile} falls in a scene of the ground truth; --truth/--scenes must belong to the video that was run`,
    );
  }
  return result;
}

export interface AdapterShare {
  name: string;
  weight: number;
}

export interface ScoreRow {
  /** Ground-truth scene index; null for the whole video. */
  scene: number | null;
  condition: string | null;
  startFrame: number;
  endFrame: number;
  /** Frames scored. */
  frames: number;
  /** Mean weight of each adapter over the frames ('base': frames run without adapters), largest first. */
  adapters: AdapterShare[];
  /** `fog 0.75, night 0.25`, or `base`. */
  adaptersUsed: string;
  /** mIoU in percent over the classes present in ground truth or prediction; null: nothing scored. */
  miou: number | null;
  /** The baseline run's mIoU (percent), when one was given. */
  baseMiou?: number | null;
  /** miou − baseMiou, in points. */
  gain?: number | null;
  /** IoU per model class (percent); null: absent from both. */
  classIou: Record<string, number | null>;
  baseClassIou?: Record<string, number | null>;
}

export interface ScoreReport {
  units: string;
  outDir: string;
  truthDir: string;
  baselineDir: string | null;
  /** Model classes scored (those ground truth has by name). */
  classes: string[];
  /** Ground-truth classes the model lacks: not scored. */
  unscoredTruthClasses: string[];
  scenes: ScoreRow[];
  whole: ScoreRow;
  pictures: string[];
}

const percent = (v: number): number | null => (Number.isNaN(v) ? null : 100 * v);

function shares(mix: Map<string, number>, frames: number): AdapterShare[] {
  if (frames === 0) return [];
  return [...mix]
    .map(([name, sum]) => ({ name, weight: sum / frames }))
    .filter((a) => a.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.name.localeCompare(b.name));
}

export function adaptersLabel(list: readonly AdapterShare[]): string {
  if (list.length === 0) return '—';
  if (list.length === 1 && list[0]!.name === BASE_NAME) return BASE_NAME;
  return list.map((a) => `${a.name} ${a.weight.toFixed(2)}`).join(', ');
}

function classIou(confusion: Confusion, names: readonly string[]): Record<string, number | null> {
  const iou = confusion.iou();
  return Object.fromEntries(names.map((n, i) => [n, percent(iou[i]!)]));
}

function row(
  scene: TruthScene | null,
  range: [number, number],
  confusion: Confusion,
  frames: number,
  mix: Map<string, number>,
  names: readonly string[],
  baseline: Confusion | undefined,
): ScoreRow {
  const adapters = shares(mix, frames);
  const miou = percent(confusion.miou());
  const r: ScoreRow = {
    scene: scene?.index ?? null,
    condition: scene?.condition ?? null,
    startFrame: range[0],
    endFrame: range[1],
    frames,
    adapters,
    adaptersUsed: adaptersLabel(adapters),
    miou,
    classIou: classIou(confusion, names),
  };
  if (baseline) {
    r.baseMiou = percent(baseline.miou());
    r.gain = miou === null || r.baseMiou === null ? null : miou - r.baseMiou;
    r.baseClassIou = classIou(baseline, names);
  }
  return r;
}

/** The report of a scored run (and baseline) over the ground-truth scenes. */
export function buildScoreReport(input: {
  outDir: string;
  truthDir: string;
  baselineDir?: string;
  truth: TruthScenes;
  mapping: ClassMapping;
  run: RunScore;
  baseline?: RunScore;
  pictures?: string[];
}): ScoreReport {
  const { truth, mapping, run, baseline } = input;
  const names = mapping.modelClasses;
  const scenes = truth.scenes.map((scene, i) =>
    row(scene, [scene.startFrame, scene.endFrame], run.scenes[i]!, run.frames[i]!, run.mix[i]!, names, baseline?.scenes[i]),
  );
  const wholeMix = new Map<string, number>();
  for (const m of run.mix) for (const [name, w] of m) wholeMix.set(name, (wholeMix.get(name) ?? 0) + w);
  const totalFrames = run.frames.reduce((a, b) => a + b, 0);
  const first = Math.min(...truth.scenes.map((s) => s.startFrame));
  const last = Math.max(...truth.scenes.map((s) => s.endFrame));
  const whole = row(null, [first, last], run.whole, totalFrames, wholeMix, names, baseline?.whole);
  const scored = new Set<number>([...mapping.lut].filter((v) => v !== IGNORE_INDEX));
  return {
    units: 'miou, baseMiou and classIou in percent; gain in points',
    outDir: input.outDir,
    truthDir: input.truthDir,
    baselineDir: input.baselineDir ?? null,
    classes: names.filter((_, i) => scored.has(i)),
    unscoredTruthClasses: mapping.unmatched,
    scenes,
    whole,
    pictures: input.pictures ?? [],
  };
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : v.toFixed(1));
const signed = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}`);

/** Fixed-width table: scene | condition | frames | adapters used | mIoU (| mIoU base | gain), then the whole video. */
export function formatScoreTable(report: ScoreReport): string {
  const withBase = report.baselineDir !== null;
  const header = ['scene', 'condition', 'frames', 'adapters used', 'mIoU %', ...(withBase ? ['mIoU base %', 'gain'] : [])];
  const cells = (r: ScoreRow, scene: string, condition: string): string[] => [
    scene,
    condition,
    String(r.frames),
    r.adaptersUsed,
    pct(r.miou),
    ...(withBase ? [pct(r.baseMiou), signed(r.gain)] : []),
  ];
  const rows = report.scenes.map((r) => cells(r, String(r.scene), r.condition ?? ''));
  rows.push(cells(report.whole, 'whole video', ''));
  const left = new Set([0, 1, 3]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => (left.has(i) ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.slice(0, -1).map(line),
    line(widths.map((w) => '-'.repeat(w))),
    line(rows[rows.length - 1]!),
  ];
  const notes = [
    `mIoU over the classes present in ground truth or prediction; scored: ${report.classes.join(', ')}`,
    ...(report.unscoredTruthClasses.length > 0 ? [`not scored (the model has no class of that name): ${report.unscoredTruthClasses.join(', ')}`] : []),
    ...(withBase ? [`base: ${report.baselineDir}; gain in points`] : []),
    ...report.pictures.map((p) => `picture: ${p}`),
  ];
  return [`streamseg score: ${report.outDir} against ${report.truthDir}`, '', ...out, '', ...notes].join('\n');
}

/** RGB (row-major) of a class-index mask in `palette` (by value); values without a colour are black. */
export function colorize(mask: Uint8Array, palette: readonly (readonly [number, number, number])[]): Buffer {
  const rgb = Buffer.alloc(mask.length * 3);
  for (let i = 0; i < mask.length; i++) {
    const c = palette[mask[i]!];
    if (!c) continue;
    rgb[i * 3] = c[0];
    rgb[i * 3 + 1] = c[1];
    rgb[i * 3 + 2] = c[2];
  }
  return rgb;
}

/** `scene-00-fog.png` (conditions keep their `+`; anything unusual becomes `_`). */
export function pictureName(scene: TruthScene): string {
  return `scene-${String(scene.index).padStart(2, '0')}-${scene.condition.replace(/[^A-Za-z0-9+_-]/g, '_')}.png`;
}

/** The middle frame of a scene. */
export const middleFrame = (scene: TruthScene): number => scene.startFrame + Math.floor((scene.endFrame - scene.startFrame - 1) / 2);

/** RGB frames `wanted` of `video` at their own size (one decode pass; stops once all are read). */
export async function decodeVideoFrames(video: string, wanted: ReadonlySet<number>): Promise<{ frames: Map<number, Buffer>; width: number; height: number }> {
  const ffmpeg = new FfmpegRepository();
  const input = { kind: 'file' as const, path: video };
  const probe = await ffmpeg.probe(input);
  const frames = new Map<number, Buffer>();
  const last = Math.max(...wanted);
  for await (const frame of ffmpeg.decodeFrames(input, { fps: probe.fps, width: probe.width, height: probe.height, streamIndex: probe.streamIndex })) {
    if (wanted.has(frame.index)) frames.set(frame.index, Buffer.from(frame.data));
    if (frame.index >= last) break;
  }
  return { frames, width: probe.width, height: probe.height };
}

const GAP = 4;

/**
 * One PNG per scene in `dir`: source | ground truth | prediction, side by side, masks in the
 * model palette (black: not scored / unknown). Returns the files written.
 */
export async function writeScenePictures(options: {
  dir: string;
  video: string;
  truthDir: string;
  scenes: readonly TruthScene[];
  mapping: ClassMapping;
  palette: readonly (readonly [number, number, number])[];
  predictions: ReadonlyMap<number, Uint8Array>;
  size: [number, number];
}): Promise<string[]> {
  const { dir, scenes, mapping, palette, predictions } = options;
  const [h, w] = options.size;
  const wanted = new Set(scenes.map(middleFrame).filter((f) => predictions.has(f)));
  if (wanted.size === 0) return [];
  const source = await decodeVideoFrames(options.video, wanted);
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const scene of scenes) {
    const index = middleFrame(scene);
    const pred = predictions.get(index);
    const rgb = source.frames.get(index);
    if (!pred || !rgb) continue;
    const sourcePanel =
      source.width === w && source.height === h
        ? rgb
        : await sharp(rgb, { raw: { width: source.width, height: source.height, channels: 3 } })
            .resize(w, h, { fit: 'fill' })
            .raw()
            .toBuffer();
    const truth = await readTruthMask(options.truthDir, index, h, w, mapping.lut);
    const raw = { width: w, height: h, channels: 3 as const };
    const file = path.join(dir, pictureName(scene));
    await sharp({ create: { width: 3 * w + 2 * GAP, height: h, channels: 3, background: { r: 255, g: 255, b: 255 } } })
      .composite([
        { input: sourcePanel, raw, left: 0, top: 0 },
        { input: colorize(truth, palette), raw, left: w + GAP, top: 0 },
        { input: colorize(pred, palette), raw, left: 2 * (w + GAP), top: 0 },
      ])
      .png()
      .toFile(file);
    written.push(file);
  }
  return written;
}
