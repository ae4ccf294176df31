/** One satisfiable byte range of a file, inclusive bounds (RFC 9110 §14). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header against a file size. Returns null when there is no usable header
 * (serve the whole file), 'unsatisfiable' for a range outside the file (answer 416), or the
 * range. Several ranges are served as the first one's span to the last one's (no multipart).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (!header) return null;
  const match = /^bytes=(.+)$/i.exec(header.trim());
  if (!match) return null;
  const specs = match[1]!.split(',').map((s) => s.trim());
  let start = Number.POSITIVE_INFINITY;
  let end = -1;
  for (const spec of specs) {
    const m = /^(\d*)-(\d*)$/.exec(spec);
    if (!m || (m[1] === '' && m[2] === '')) return null;
    let s: number;
    let e: number;
    if (m[1] === '') {
      // Suffix range: the last N bytes.
      const n = Number(m[2]);
      if (n === 0) continue;
      s = Math.max(0, size - n);
      e = size - 1;
    } else {
      s = Number(m[1]);
      e = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
      if (m[2] !== '' && Number(m[2]) < s) return null;
    }
    if (s >= size) continue;
    start = Math.min(start, s);
    end = Math.max(end, e);
  }
  if (end < 0 || !Number.isFinite(start)) return 'unsatisfiable';
  return { start, end };
}
