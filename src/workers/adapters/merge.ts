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
 * computed without forming ΔW. Of the two factors, the one with fewer rows (Y: Acᵀ or Bc) gets
 * a thin QR, Y = Q·R_Y; the other (X) only its Gram matrix XᵀX. Then X·Yᵀ = N·Qᵀ with
 * N = X·R_Yᵀ, and the eigenvectors v_j of the small R×R matrix NᵀN = R_Y·XᵀX·R_Yᵀ give ΔW's
 * singular pairs: N·v_j (its length is σ_j) and Q·v_j.
 *
 * Written by hand on purpose: the matrices are tiny (R is a few tens, in/out a few hundred) and
 * no maintained numeric library in the npm registry fits (the candidates are unmaintained, pull
 * in native builds, or lack an SVD on plain typed arrays).
 *
 * Why this shape (profiles in bench/README.md, "svd merge on a cache miss" and "Tenth round"):
 * a Gram matrix is half the multiply-adds of a QR and needs no stores, and a symmetric
 * tridiagonal eigensolver on R×R took 1.1 ms per merge where one-sided Jacobi on a core from two
 * QRs took 3.85 (top-3 of models/default).
 *
 * Precision: NᵀN squares N's condition number, so only components above its noise floor
 * (λ_j > R·ε·λ_1, i.e. σ_j above ~7e-8·σ_1 at R = 24, under float32 resolution) are kept. No
 * factor is ever rebuilt through an inverse: V is orthogonal to working precision, so
 * Σ_j N·v_j·(Q·v_j)ᵀ = N·Qᵀ = ΔW however inaccurate the singular vectors of the smallest
 * components are.
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
  // ΔW = Bc·(Acᵀ)ᵀ, and ΔWᵀ = Acᵀ·Bcᵀ: either way a product X·Yᵀ.
  const qrOnA = cin <= out;
  const x = qrOnA ? bc : at;
  const xRows = qrOnA ? out : cin;
  const q = qrOnA ? at : bc;
  const qRows = qrOnA ? cin : out;
  const rY = thinQrInPlace(q, qRows, R);
  const eigen = symmetricEigen(congruence(rY, gram(x, xRows, R), R), R);
  const floor = R * Number.EPSILON * Math.max(eigen.values[eigen.order[0]!]!, 0);
  const A = new Float32Array(k * cin);
  const B = new Float32Array(out * k);
  const v = new Float64Array(R);
  const w = new Float64Array(R);
  const nv = new Float64Array(xRows);
  const qv = new Float64Array(qRows);
  for (let t = 0; t < k; t++) {
    const j = eigen.order[t]!;
    // Components under the noise floor, and those past rank ΔW, carry nothing: their B column
    // and A row stay zero.
    if (!(eigen.values[j]! > floor)) continue;
    v.set(eigen.vectors.subarray(j * R, (j + 1) * R));
    // w = R_Yᵀ·v (R_Y upper triangular, column-major), so N·v = X·w
    for (let l = 0; l < R; l++) {
      let s = 0;
      for (let i = 0; i <= l; i++) s += rY[l * R + i]! * v[i]!;
      w[l] = s;
    }
    combineColumns(x, xRows, R, w, nv);
    const sigma = columnNorm(nv, 0, xRows);
    if (sigma === 0) continue;
    combineColumns(q, qRows, R, v, qv);
    // B = U√Σ, A = √Σ Vᵀ: N·v has length σ, Q·v length 1.
    const root = Math.sqrt(sigma);
    const bColumn = qrOnA ? nv : qv;
    const bScale = qrOnA ? 1 / root : root;
    const aRow = qrOnA ? qv : nv;
    const aScale = qrOnA ? root : 1 / root;
    for (let o = 0; o < out; o++) B[o * k + t] = bColumn[o]! * bScale;
    for (let c = 0; c < cin; c++) A[t * cin + c] = aRow[c]! * aScale;
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
  columnDots(q, rows, j, 0, j, dots);
  let p = 0;
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

/** XᵀX of a column-major X [rows, cols], both halves filled. */
function gram(x: Float64Array, rows: number, cols: number): Float64Array {
  const g = new Float64Array(cols * cols);
  const dots = new Float64Array(cols);
  for (let a = 0; a < cols; a++) {
    columnDots(x, rows, a, a, cols, dots);
    for (let b = a; b < cols; b++) g[a * cols + b] = g[b * cols + a] = dots[b]!;
  }
  return g;
}

/**
 * dots[k] = x_k · x_column for from ≤ k < to (columns of a column-major [rows, ·] x), four
 * columns per pass: one load of x_column feeds four multiply-adds.
 */
function columnDots(x: Float64Array, rows: number, column: number, from: number, to: number, dots: Float64Array): void {
  const start = column * rows;
  let k = from;
  for (; k + 3 < to; k += 4) {
    const o0 = k * rows;
    const o1 = o0 + rows;
    const o2 = o1 + rows;
    const o3 = o2 + rows;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < rows; i++) {
      const c = x[start + i]!;
      s0 += x[o0 + i]! * c;
      s1 += x[o1 + i]! * c;
      s2 += x[o2 + i]! * c;
      s3 += x[o3 + i]! * c;
    }
    dots[k] = s0;
    dots[k + 1] = s1;
    dots[k + 2] = s2;
    dots[k + 3] = s3;
  }
  for (; k < to; k++) {
    const o = k * rows;
    let s = 0;
    for (let i = 0; i < rows; i++) s += x[o + i]! * x[start + i]!;
    dots[k] = s;
  }
}

/** R·G·Rᵀ for an upper triangular R (column-major: r[j*n + i] = R[i][j]) and a symmetric G; exactly symmetric. */
function congruence(r: Float64Array, g: Float64Array, n: number): Float64Array {
  // T = R·G, row-major: T[i][c] = Σ_{l ≥ i} R[i][l]·G[l][c]
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let l = i; l < n; l++) {
      const ril = r[l * n + i]!;
      if (ril === 0) continue;
      const gl = l * n;
      const ti = i * n;
      for (let c = 0; c < n; c++) t[ti + c] = t[ti + c]! + ril * g[gl + c]!;
    }
  }
  // S[i][j] = Σ_{m ≥ j} T[i][m]·R[j][m], computed for j ≥ i and mirrored
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let sum = 0;
      for (let m = j; m < n; m++) sum += t[i * n + m]! * r[m * n + j]!;
      s[i * n + j] = s[j * n + i] = sum;
    }
  }
  return s;
}

/**
 * Eigenvalues and eigenvectors of a small symmetric matrix: Householder reduction to
 * tridiagonal form, then the implicit QL algorithm (EISPACK's tred2 and tql2, as in JAMA).
 * `vectors` holds eigenvector j at [j*n, (j+1)*n); `order` lists the eigenvalues from largest to
 * smallest. The matrix (s) is overwritten.
 */
function symmetricEigen(s: Float64Array, n: number): { values: Float64Array; vectors: Float64Array; order: number[] } {
  // v[c*n + r] is V[r][c]: column-major, so every inner loop below runs down a column.
  const v = s;
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  for (let j = 0; j < n; j++) d[j] = v[j * n + n - 1]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = v[j * n + i - 1]!;
        v[j * n + i] = 0;
        v[i * n + j] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] = d[k]! / scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        v[i * n + j] = f;
        g = e[j]! + v[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += v[j * n + k]! * d[k]!;
          e[k] = e[k]! + v[j * n + k]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] = e[j]! / h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = e[j]! - hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) v[j * n + k] = v[j * n + k]! - (f * e[k]! + g * d[k]!);
        d[j] = v[j * n + i - 1]!;
        v[j * n + i] = 0;
      }
    }
    d[i] = h;
  }
  // accumulate the Householder transformations
  for (let i = 0; i < n - 1; i++) {
    v[i * n + n - 1] = v[i * n + i]!;
    v[i * n + i] = 1;
    const h = d[i + 1]!;
    const next = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = v[next + k]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += v[next + k]! * v[j * n + k]!;
        for (let k = 0; k <= i; k++) v[j * n + k] = v[j * n + k]! - g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) v[next + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = v[j * n + n - 1]!;
    v[j * n + n - 1] = 0;
  }
  v[n * n - 1] = 1;
  e[0] = 0;

  // implicit QL on the tridiagonal (d, e)
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = Number.EPSILON;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n && Math.abs(e[m]!) > eps * tst1) m++;
    // Converges in 2-3 iterations per eigenvalue; the cap only guards against NaN input spinning.
    for (let iteration = 0; m > l && Math.abs(e[l]!) > eps * tst1 && iteration < 64; iteration++) {
      let g = d[l]!;
      let p = (d[l + 1]! - g) / (2 * e[l]!);
      let r = Math.hypot(p, 1);
      if (p < 0) r = -r;
      d[l] = e[l]! / (p + r);
      d[l + 1] = e[l]! * (p + r);
      const dl1 = d[l + 1]!;
      let h = g - d[l]!;
      for (let i = l + 2; i < n; i++) d[i] = d[i]! - h;
      f += h;
      p = d[m]!;
      let c = 1;
      let c2 = c;
      let c3 = c;
      const el1 = e[l + 1]!;
      let sine = 0;
      let s2 = 0;
      for (let i = m - 1; i >= l; i--) {
        c3 = c2;
        c2 = c;
        s2 = sine;
        g = c * e[i]!;
        h = c * p;
        r = Math.hypot(p, e[i]!);
        e[i + 1] = sine * r;
        sine = e[i]! / r;
        c = p / r;
        p = c * d[i]! - sine * g;
        d[i + 1] = h + sine * (c * g + sine * d[i]!);
        const oi = i * n;
        const oj = oi + n;
        for (let k = 0; k < n; k++) {
          const vk = v[oj + k]!;
          v[oj + k] = sine * v[oi + k]! + c * vk;
          v[oi + k] = c * v[oi + k]! - sine * vk;
        }
      }
      p = (-sine * s2 * c3 * el1 * e[l]!) / dl1;
      e[l] = sine * p;
      d[l] = c * p;
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => d[b]! - d[a]!);
  return { values: d, vectors: v, order };
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
