import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, StreamsegError } from './errors/index.js';

/** The real path of `target`, resolving symlinks of its longest existing ancestor (the rest may not exist yet). */
async function realPathOfAncestor(target: string): Promise<string> {
  const missing: string[] = [];
  let current = path.resolve(target);
  for (;;) {
    const real = await realpath(current).catch(() => null);
    if (real) return path.join(real, ...missing.reverse());
    const parent = path.dirname(current);
    if (parent === current) return path.resolve(target);
    missing.push(path.basename(current));
    current = parent;
  }
}

/**
 * Refuses an output directory outside the configured root (STREAMSEG_OUT; `streamseg run --out
 * DIR` makes DIR the root), so a job payload cannot make a sink write anywhere else. `..` and
 * symlinks are resolved before comparing. Returns the absolute directory.
 */
export async function assertUnderOutputRoot(outDir: string, root: string): Promise<string> {
  const absolute = path.resolve(outDir);
  const [realDir, realRoot] = await Promise.all([realPathOfAncestor(absolute), realPathOfAncestor(root)]);
  const relative = path.relative(realRoot, realDir);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new StreamsegError(
      ErrorCode.OUTPUT_DIR,
      `output directory ${outDir} is outside the output root ${path.resolve(root)}: write under STREAMSEG_OUT or set it to a directory that contains ${outDir}`,
    );
  }
  return absolute;
}
