/**
 * Credentials in URLs (rtsp://user:pass@camera) are needed to open a source and nowhere else:
 * logs, error messages, job data and status shown to anyone have them replaced.
 */

/** `scheme://userinfo@` anywhere in a text; userinfo cannot hold `/`, `?`, `#`, `@`, whitespace or quotes. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s"'<>\\]+@/gi;

/** The URL with any user name and password replaced by `***` (rtsp://***@camera/stream). */
export function redactUrl(url: string): string {
  return redactText(url);
}

/** Every `scheme://user:pass@` in a text (a log line, an error message, ffmpeg's stderr) as `scheme://***@`. */
export function redactText(text: string): string {
  return text.replace(USERINFO, '$1***@');
}

/** A deep copy of a JSON-like value with every string redacted (job data shown through the API). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactDeep(v)])) as T;
  }
  return value;
}
