import type { ModelInputSpec } from '../shared/model-input-plan.js';
import { CONDITIONS, parseCondition, type Condition } from './conditions.js';
import { SynthError } from './synth-error.js';
import { ErrorCode } from '../shared/errors/index.js';

/**
 * Parsers for `streamseg synth` flags. Each failure names the flag, the bad value
 * and what would be accepted, as one line.
 */
function bad(flag: string, value: string, expected: string): SynthError {
  return new SynthError(ErrorCode.SYNTH_OPTION, `${flag} ${JSON.stringify(value)}: ${expected}`);
}

export function parseSize(value: string, flag = '--size', opts: { even?: boolean } = {}): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/i.exec(value.trim());
  if (!m) throw bad(flag, value, 'expected WIDTHxHEIGHT, e.g. 256x256');
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width < 32 || height < 32 || width > 4096 || height > 4096) throw bad(flag, value, 'width and height must be between 32 and 4096');
  if (opts.even && (width % 2 !== 0 || height % 2 !== 0)) throw bad(flag, value, 'H.264 yuv420p needs even width and height, e.g. 256x256');
  return { width, height };
}

export function parseIntFlag(value: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(value.trim())) throw bad(flag, value, `expected a whole number${min > -Infinity ? ` >= ${min}` : ''}`);
  const n = Number(value);
  if (n < min || n > max) throw bad(flag, value, `must be between ${min} and ${max}`);
  return n;
}

export function parseConditions(value: string, flag = '--conditions'): Condition[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw bad(flag, value, `give one or more of ${CONDITIONS.join(', ')}`);
  return items.map((item) => {
    const c = parseCondition(item);
    if (!c) throw bad(flag, item, `unknown condition; use one or more of ${CONDITIONS.join(', ')}`);
    return c;
  });
}

/** "0.7" (fixed) or "0.5-1" (uniform range), both within [0, 1]. */
export function parseIntensity(value: string, flag = '--intensity'): readonly [number, number] {
  const m = /^\s*([0-9]*\.?[0-9]+)\s*(?:-\s*([0-9]*\.?[0-9]+))?\s*$/.exec(value);
  if (!m) throw bad(flag, value, 'expected a value or a range in [0,1], e.g. 0.8 or 0.5-1');
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (!(lo >= 0 && hi <= 1 && lo <= hi)) throw bad(flag, value, 'expected 0 <= low <= high <= 1');
  return [lo, hi];
}

export function parseFps(value: string, flag = '--fps'): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 240) throw bad(flag, value, 'expected a frame rate between 1 and 240, e.g. 24');
  return n;
}

/** "640x360" or a comma-separated list "640x360,1280x720". */
export function parseSizes(value: string, flag = '--size'): { width: number; height: number }[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw bad(flag, value, 'expected WIDTHxHEIGHT or a comma-separated list, e.g. 640x360,1280x720');
  return items.map((item) => parseSize(item, flag));
}

/**
 * `fit:PIXELS:STRIDE:MAXSIDE[:SMALLSCALE]` (aspect-preserving, constant pixel budget, as a manifest's
 * `input.fit`) or `letterbox:WxH` (fixed-size input, padded black).
 */
export function parseModelInput(value: string, flag = '--model-input'): ModelInputSpec {
  const expected = 'expected fit:PIXELS:STRIDE:MAXSIDE[:SMALLSCALE] (e.g. fit:28672:16:448:1.4) or letterbox:WxH (e.g. letterbox:256x256)';
  const fit = /^fit:(\d+):(\d+):(\d+)(?::(\d+(?:\.\d+)?))?$/i.exec(value.trim());
  if (fit) {
    const pixels = Number(fit[1]);
    const stride = Number(fit[2]);
    const maxSide = Number(fit[3]);
    const smallSourceScale = fit[4] === undefined ? undefined : Number(fit[4]);
    if (pixels < 64 || pixels > 4096 * 4096 || stride < 1 || stride > 256 || maxSide < 8 || maxSide > 4096 || maxSide < stride * 2) {
      throw bad(flag, value, 'need 64 <= PIXELS <= 4096², 1 <= STRIDE <= 256, 2·STRIDE <= MAXSIDE <= 4096');
    }
    if (smallSourceScale !== undefined && !(smallSourceScale >= 1 && smallSourceScale <= 4)) throw bad(flag, value, 'need 1 <= SMALLSCALE <= 4');
    return {
      width: maxSide,
      height: maxSide,
      fit: smallSourceScale === undefined ? { pixels, stride, maxSide } : { pixels, stride, maxSide, smallSourceScale },
    };
  }
  const box = /^letterbox:(\d+)x(\d+)$/i.exec(value.trim());
  if (box) {
    const width = Number(box[1]);
    const height = Number(box[2]);
    if (width < 8 || height < 8 || width > 4096 || height > 4096) throw bad(flag, value, 'width and height must be between 8 and 4096');
    return { width, height };
  }
  throw bad(flag, value, expected);
}
