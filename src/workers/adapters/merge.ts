import type { LoraTarget } from '../../shared/model-manifest.js';
import type { MergeMethod } from '../../shared/retrieval-options.js';
import type { AdapterTarget, LoadedAdapter } from '../../shared/adapters/adapter-loader.js';

/**
 * Merging LoRA adapters into one, on typed arrays (DESIGN "Merging").
 *
 * What a weighted combination of adapters means is ΔW = Σ_i w_i · s_i · B_i A_i with
 * s_i = α_i / r_i. The segmentation graph computes x·Aᵀ·Bᵀ with no scaling, so every merged
 * B here already carries w_i · s_i: the result is ready to feed.
 *
 * - `cat`: A = vstack(A_i), B = hstack(w_i s_i B_i). Exactly ΔW, rank Σ r_i.
 * - `linear`: A = Σ w_i A_i, B = Σ w_i s_i B_i (each a weighted average when Σ w_i = 1), the
 *   thesis' and PEFT's "linear" combination. Cheap and approximate: it adds cross terms
 *   B_i A_j and scales each adapter's own term by w_i². Ranks that differ are zero-padded.
 * - `svd`: ΔW truncated to its top `rank` singular triplets, B = U√Σ, A = √Σ Vᵀ. Exact when
 *   `rank` ≥ rank ΔW.
 *
 * Weights are used as given (retrieval hands in weights that sum to 1). A target no input
 * adapter touches merges to rank 0 (the caller feeds zeros).
 */
export { MERGE_METHODS, type MergeMethod } from '../../shared/retrieval-options.js';

export interface WeightedAdapter {
  adapter: LoadedAdapter;
  weight: number;
}

/** One target of a merged adapter: ΔW = B·A, the scaling folded into B (B is [out, r], row-major). */
export type MergedTarget = Omit<AdapterTarget, 'scaling'>;

export interface MergeOptions {
  method: MergeMethod;
  /**
   * Rank of an `svd` merge. @defaultValue the largest rank among the inputs for that target
   * (what PEFT's svd combination uses), capped at rank ΔW's bound Σ r_i.
   */
  svdRank?: number;
}

export function mergeAdapters(inputs: readonly WeightedAdapter[], targets: readonly LoraTarget[], options: MergeOptions): Map<string, MergedTarget> {
  if (options.svdRank !== undefined && (!Number.isInteger(options.svdRank) || options.svdRank < 1)) {
    throw new RangeError(`svdRank must be a positive integer, got ${options.svdRank}`);
  }
  for (const { adapter, weight } of inputs) {
    if (!Number.isFinite(weight)) throw new RangeError(`weight of adapter "${adapter.name}" must be finite, got ${weight}`);
  }
  const merged = new Map<string, MergedTarget>();
  for (const target of targets) {
    const parts = inputs
      .filter(({ adapter, weight }) => weight !== 0 && adapter.targets.has(target.module))
      .map(({ adapter, weight }) => {
        const t = adapter.targets.get(target.module)!;
        return { A: t.A, B: t.B, r: t.r, weight, factor: weight * t.scaling };
      });
    let result: MergedTarget;
    if (parts.length === 0) result = { module: target.module, in: target.in, out: target.out, r: 0, A: new Float32Array(0), B: new Float32Array(0) };
    else if (options.method === 'cat') result = mergeCat(target, parts);
    else if (options.method === 'linear') result = mergeLinear(target, parts);
    else result = mergeSvd(target, parts, options.svdRank);
    merged.set(target.module, result);
  }
  return merged;
}

interface Part {
  A: Float32Array;
  B: Float32Array;
  r: number;
  /** w_i */
  weight: number;
  /** w_i · s_i */
  factor: number;
}

function mergeCat(target: LoraTarget, parts: Part[]): MergedTarget {
  const { in: cin, out } = target;
  const rank = parts.reduce((s, p) => s + p.r, 0);
  const A = new Float32Array(rank * cin);
  const B = new Float32Array(out * rank);
  let offset = 0;
  for (const p of parts) {
    A.set(p.A, offset * cin);
    for (let o = 0; o < out; o++) {
      for (let j = 0; j < p.r; j++) B[o * rank + offset + j] = p.factor * p.B[o * p.r + j]!;
    }
    offset += p.r;
  }
  return { module: target.module, in: cin, out, r: rank, A, B };
}

function mergeLinear(target: LoraTarget, parts: Part[]): MergedTarget {
  const { in: cin, out } = target;
  const rank = Math.max(...parts.map((p) => p.r));
  const A = new Float64Array(rank * cin);
  const B = new Float64Array(out * rank);
  for (const p of parts) {
    // A is averaged with the plain weight; B with weight × scaling (scaling folded into B).
    const w = p.weight;
    for (let j = 0; j < p.r; j++) {
      for (let c = 0; c < cin; c++) A[j * cin + c] = A[j * cin + c]! + w * p.A[j * cin + c]!;
    }
    for (let o = 0; o < out; o++) {
      for (let j = 0; j < p.r; j++) B[o * rank + j] = B[o * rank + j]! + p.factor * p.B[o * p.r + j]!;
    }
  }
  return { module: target.module, in: cin, out, r: rank, A: Float32Array.from(A), B: Float32Array.from(B) };
}

/**
 * Truncated SVD of ΔW = Bc·Ac (Bc = hstack(w_i s_i B_i) [out, R], Ac = vstack(A_i) [R, in]),
 * computed without forming ΔW: thin QR of Bc and Acᵀ, then the SVD of the small R×R core
 * R_B·R_Aᵀ by one-sided Jacobi. Written by hand on purpose: the matrices are tiny (R is a few
 * tens, in/out a few hundred), Jacobi is accurate to working precision, and no maintained
 * numeric library in the npm registry fits (the candidates are unmaintained, pull in native
 * builds, or lack an SVD on plain typed arrays).
 *
 * The inner loops work on four columns at a time (one load of the shared operand for four
 * multiply-adds, four independent sums): at these sizes V8's scalar loads, not the arithmetic,
 * set the pace (profile in bench/README.md, "svd merge on a cache miss").
 */
function mergeSvd(target: LoraTarget, parts: Part[], svdRank: number | undefined): MergedTarget {
  const { in: cin, out } = target;
  let R = 0;
  let largestInputRank = 0;
  for (const p of parts) {
    R += p.r;
    largestInputRank = Math.max(largestInputRank, p.r);
  }
  const k = Math.min(svdRank ?? largestInputRank, R);
  // Bc [out, R] and Acᵀ [in, R], column-major in float64, straight from the parts (no float32
  // cat merge in between: w_i s_i B_i keeps its float64 product).
  const bc = new Float64Array(out * R);
  const at = new Float64Array(cin * R);
  let offset = 0;
  for (const p of parts) {
    for (let j = 0; j < p.r; j++) {
      const column = (offset + j) * out;
      for (let o = 0; o < out; o++) bc[column + o] = p.factor * p.B[o * p.r + j]!;
    }
    at.set(p.A, offset * cin);
    offset += p.r;
  }
  const rB = thinQrInPlace(bc, out, R);
  const rA = thinQrInPlace(at, cin, R);
  // core M = R_B · R_Aᵀ (R×R, column-major); both are upper triangular, so
  // M[i][j] = Σ_{l ≥ max(i, j)} R_B[i][l] · R_A[j][l].
  const m = new Float64Array(R * R);
  for (let j = 0; j < R; j++) {
    for (let i = 0; i < R; i++) {
      let s = 0;
      for (let l = Math.max(i, j); l < R; l++) s += rB[l * R + i]! * rA[l * R + j]!;
      m[j * R + i] = s;
    }
  }
  const svd = jacobiSvd(m, R);
  const A = new Float32Array(k * cin);
  const B = new Float32Array(out * k);
  // B[:, t] = Q_B · U[:, j] · √σ ; A[t, :] = √σ · (Q_A · V[:, j])ᵀ
  const weights = new Float64Array(R);
  const bColumn = new Float64Array(out);
  const aRow = new Float64Array(cin);
  for (let t = 0; t < k; t++) {
    const j = svd.order[t]!;
    const root = Math.sqrt(svd.sigma[j]!);
    // Components past rank ΔW carry nothing: their B column and A row stay zero.
    if (root === 0) continue;
    for (let l = 0; l < R; l++) weights[l] = svd.u[j * R + l]! * root;
    combineColumns(bc, out, R, weights, bColumn);
    for (let o = 0; o < out; o++) B[o * k + t] = bColumn[o]!;
    for (let l = 0; l < R; l++) weights[l] = svd.v[j * R + l]! * root;
    combineColumns(at, cin, R, weights, aRow);
    for (let c = 0; c < cin; c++) A[t * cin + c] = aRow[c]!;
  }
  return { module: target.module, in: cin, out, r: k, A, B };
}

/** result = Q · weights for a column-major Q [rows, cols], four columns of Q per pass over result. */
function combineColumns(q: Float64Array, rows: number, cols: number, weights: Float64Array, result: Float64Array): void {
  result.fill(0);
  let l = 0;
  for (; l + 3 < cols; l += 4) {
    const w0 = weights[l]!;
    const w1 = weights[l + 1]!;
    const w2 = weights[l + 2]!;
    const w3 = weights[l + 3]!;
    const o0 = l * rows;
    const o1 = o0 + rows;
    const o2 = o1 + rows;
    const o3 = o2 + rows;
    for (let i = 0; i < rows; i++) result[i] = result[i]! + q[o0 + i]! * w0 + q[o1 + i]! * w1 + q[o2 + i]! * w2 + q[o3 + i]! * w3;
  }
  for (; l < cols; l++) {
    const w = weights[l]!;
    const o = l * rows;
    for (let i = 0; i < rows; i++) result[i] = result[i]! + q[o + i]! * w;
  }
}

/**
 * Thin QR of a column-major [rows, cols] matrix by Gram–Schmidt, in place: x becomes Q, and R
 * (upper triangular, column-major: r[j*cols + i] = R[i][j]) is returned. Each column is
 * projected against all previous ones at once (classical Gram–Schmidt, which blocks into
 * four-column loops; the modified variant cannot, each of its steps waits on the last) and
 * re-orthogonalised only when that cancelled most of it (the Daniel–Gragg–Kaufman–Stewart
 * test: its norm fell below 1/√2 of what it was), where one pass would leave it visibly
 * non-orthogonal. A column that is (numerically) in the span of the previous ones gets q = 0
 * and a zero row in R, which keeps Q·R = X and makes the matching row of the SVD core zero,
 * so it never reaches a singular vector.
 */
function thinQrInPlace(q: Float64Array, rows: number, cols: number): Float64Array {
  const r = new Float64Array(cols * cols);
  const dots = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    const start = j * rows;
    const original = columnNorm(q, start, rows);
    let before = original;
    let norm = original;
    for (let pass = 0; pass < 2 && j > 0; pass++) {
      projectOut(q, rows, j, dots);
      for (let p = 0; p < j; p++) r[j * cols + p] = r[j * cols + p]! + dots[p]!;
      norm = columnNorm(q, start, rows);
      if (norm > before * Math.SQRT1_2) break;
      before = norm;
    }
    if (norm <= 1e-12 * original || norm === 0) {
      q.fill(0, start, start + rows);
      r[j * cols + j] = 0;
    } else {
      for (let i = start; i < start + rows; i++) q[i] = q[i]! / norm;
      r[j * cols + j] = norm;
    }
  }
  return r;
}

function columnNorm(q: Float64Array, start: number, rows: number): number {
  let squared = 0;
  for (let i = start; i < start + rows; i++) squared += q[i]! * q[i]!;
  return Math.sqrt(squared);
}

/** dots[p] = q_p · x_j for p < j, then x_j −= Σ_p dots[p] · q_p (columns of a column-major [rows, ·] q). */
function projectOut(q: Float64Array, rows: number, j: number, dots: Float64Array): void {
  const start = j * rows;
  let p = 0;
  for (; p + 3 < j; p += 4) {
    const o0 = p * rows;
    const o1 = o0 + rows;
    const o2 = o1 + rows;
    const o3 = o2 + rows;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < rows; i++) {
      const x = q[start + i]!;
      s0 += q[o0 + i]! * x;
      s1 += q[o1 + i]! * x;
      s2 += q[o2 + i]! * x;
      s3 += q[o3 + i]! * x;
    }
    dots[p] = s0;
    dots[p + 1] = s1;
    dots[p + 2] = s2;
    dots[p + 3] = s3;
  }
  for (; p < j; p++) {
    const o = p * rows;
    let s = 0;
    for (let i = 0; i < rows; i++) s += q[o + i]! * q[start + i]!;
    dots[p] = s;
  }
  p = 0;
  for (; p + 3 < j; p += 4) {
    const d0 = dots[p]!;
    const d1 = dots[p + 1]!;
    const d2 = dots[p + 2]!;
    const d3 = dots[p + 3]!;
    const o0 = p * rows;
    const o1 = o0 + rows;
    const o2 = o1 + rows;
    const o3 = o2 + rows;
    for (let i = 0; i < rows; i++) q[start + i] = q[start + i]! - d0 * q[o0 + i]! - d1 * q[o1 + i]! - d2 * q[o2 + i]! - d3 * q[o3 + i]!;
  }
  for (; p < j; p++) {
    const d = dots[p]!;
    const o = p * rows;
    for (let i = 0; i < rows; i++) q[start + i] = q[start + i]! - d * q[o + i]!;
  }
}

/**
 * SVD of a small square column-major matrix by one-sided (Hestenes) Jacobi: rotate column
 * pairs of G = M until all columns are orthogonal (G = M·V); then σ_j = |g_j|, u_j = g_j/σ_j.
 * The rotations are not accumulated: v_j = Mᵀu_j/σ_j gives the right singular vectors of the
 * non-zero singular values (the only ones a truncation keeps), at a third less work per sweep.
 */
function jacobiSvd(m: Float64Array, n: number): { u: Float64Array; v: Float64Array; sigma: Float64Array; order: number[] } {
  const g = Float64Array.from(m);
  // Columns count as orthogonal at |cos| ≤ 1e-9: far below float32 output precision, and reached
  // in a few sweeps (1e-15 can stall at rounding level and spin to the sweep limit).
  const eps = 1e-9;
  // Squared column norms, carried through each rotation (α' = α − tγ, β' = β + tγ) so a pair
  // costs one dot product instead of three; recomputed every sweep so rounding cannot pile up.
  const norms = new Float64Array(n);
  for (let sweep = 0; sweep < 80; sweep++) {
    for (let j = 0; j < n; j++) norms[j] = columnNorm(g, j * n, n) ** 2;
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      const po = p * n;
      for (let q = p + 1; q < n; q++) {
        const qo = q * n;
        const alpha = norms[p]!;
        const beta = norms[q]!;
        let gamma = 0;
        for (let i = 0; i < n; i++) gamma += g[po + i]! * g[qo + i]!;
        if (gamma === 0 || alpha === 0 || beta === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < n; i++) {
          const gp = g[po + i]!;
          const gq = g[qo + i]!;
          g[po + i] = c * gp - s * gq;
          g[qo + i] = s * gp + c * gq;
        }
        norms[p] = alpha - t * gamma;
        norms[q] = beta + t * gamma;
      }
    }
    if (!rotated) break;
  }
  const sigma = new Float64Array(n);
  const u = new Float64Array(n * n);
  const v = new Float64Array(n * n);
  let largest = 0;
  for (let j = 0; j < n; j++) {
    let norm = 0;
    for (let i = 0; i < n; i++) norm += g[j * n + i]! * g[j * n + i]!;
    sigma[j] = Math.sqrt(norm);
    largest = Math.max(largest, sigma[j]!);
  }
  for (let j = 0; j < n; j++) {
    const sj = sigma[j]!;
    // Numerically zero singular values carry nothing: leave their vectors zero.
    if (sj <= 1e-13 * largest || sj === 0) {
      sigma[j] = 0;
      continue;
    }
    for (let i = 0; i < n; i++) u[j * n + i] = g[j * n + i]! / sj;
    // v_j = Mᵀ u_j / σ_j  (M column-major: (Mᵀu)_c = Σ_r M[r][c] u_r = column c · u)
    for (let c = 0; c < n; c++) {
      let dot = 0;
      for (let r = 0; r < n; r++) dot += m[c * n + r]! * u[j * n + r]!;
      v[j * n + c] = dot / sj;
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => sigma[b]! - sigma[a]!);
  return { u, v, sigma, order };
}

/** Dense reference ΔW = Σ w_i s_i B_i A_i of one target, row-major [out, in], float64. */
export function denseDelta(inputs: readonly WeightedAdapter[], target: LoraTarget): Float64Array {
  const { in: cin, out } = target;
  const delta = new Float64Array(out * cin);
  for (const { adapter, weight } of inputs) {
    const t = adapter.targets.get(target.module);
    if (!t || weight === 0) continue;
    const factor = weight * t.scaling;
    for (let o = 0; o < out; o++) {
      for (let j = 0; j < t.r; j++) {
        const b = factor * t.B[o * t.r + j]!;
        if (b === 0) continue;
        for (let c = 0; c < cin; c++) delta[o * cin + c] = delta[o * cin + c]! + b * t.A[j * cin + c]!;
      }
    }
  }
  return delta;
}

/** ΔW = B·A of a merged target, row-major [out, in], float64. */
export function mergedDelta(merged: MergedTarget): Float64Array {
  const { in: cin, out, r } = merged;
  const delta = new Float64Array(out * cin);
  for (let o = 0; o < out; o++) {
    for (let j = 0; j < r; j++) {
      const b = merged.B[o * r + j]!;
      if (b === 0) continue;
      for (let c = 0; c < cin; c++) delta[o * cin + c] = delta[o * cin + c]! + b * merged.A[j * cin + c]!;
    }
  }
  return delta;
}

/** ‖x − y‖_F / ‖y‖_F (0 when both are zero). */
export function relativeError(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < y.length; i++) {
    const d = x[i]! - y[i]!;
    diff += d * d;
    norm += y[i]! * y[i]!;
  }
  return norm === 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
}
