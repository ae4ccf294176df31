import os from 'node:os';
import path from 'node:path';

/** A directory of this server and the name messages give it instead. */
export interface NamedRoot {
  dir: string;
  label: string;
}

/** Absolute paths under the usual filesystem roots, where a message starts, or after a space, quote, bracket or `=`. */
const FILESYSTEM_PATH =
  /(^|[\s'"([=])\/(?:tmp|var|home|root|etc|usr|opt|srv|mnt|media|data|work|proc|dev|run|private|Users|nix)(?=$|[/\s'"()[\],;:])(?:\/[^\s'"()[\],;]*)?/g;

/**
 * Takes server paths out of what the API says (error messages, a video's error and warnings):
 * the output, upload, model and temporary directories become `<out>`, `<uploads>`, `<model>`,
 * `<tmp>`, and any other absolute path its last name only (`…/name`). A client learns what went
 * wrong, not how the server's disk is laid out.
 */
export class ServerPathScrubber {
  private readonly roots: { pattern: RegExp; label: string }[];

  constructor(roots: NamedRoot[]) {
    // Longest first, so /tmp/x/out/uploads is <uploads>, not <out>/uploads.
    this.roots = roots
      .filter((r) => r.dir && path.isAbsolute(r.dir) && r.dir !== '/')
      .map((r) => ({ dir: r.dir.replace(/\/+$/, ''), label: r.label }))
      .sort((a, b) => b.dir.length - a.dir.length)
      // Only where a path starts (not inside a URL's path) and only whole directory names.
      .map(({ dir, label }) => ({ pattern: new RegExp(`(^|[\\s'"(\\[=])${escapeRegExp(dir)}(?=$|[/\\s'"()\\[\\],;:])`, 'g'), label }));
  }

  /** The roots of an API server: its outputs, uploads, model package, the temporary directory and its working directory. */
  static forServer(dirs: { outDir: string; uploadDir: string; modelDir: string }): ServerPathScrubber {
    return new ServerPathScrubber([
      { dir: path.resolve(dirs.uploadDir), label: '<uploads>' },
      { dir: path.resolve(dirs.outDir), label: '<out>' },
      { dir: path.resolve(dirs.modelDir), label: '<model>' },
      { dir: os.tmpdir(), label: '<tmp>' },
      { dir: process.cwd(), label: '<server>' },
    ]);
  }

  scrub(text: string): string {
    let out = text;
    for (const { pattern, label } of this.roots) out = out.replace(pattern, (_whole, before: string) => `${before}${label}`);
    return out.replace(FILESYSTEM_PATH, (whole, before: string) => {
      const name = whole.slice(before.length).split('/').filter(Boolean).at(-1) ?? '';
      return `${before}…/${name}`;
    });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
