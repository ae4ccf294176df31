import { createHash } from 'node:crypto';

/**
 * What a token may do, each scope including the ones before it:
 * `read` (status, lists, outputs, events, adapter list, metrics), `submit` (also submit videos,
 * stop and cancel its own), `admin` (also adapter writes, cancel or stop of any video, /admin/queues).
 */
export const TOKEN_SCOPES = ['read', 'submit', 'admin'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** An entry without `:<scope>` keeps the meaning every token had before scopes existed: everything. */
export const UNSCOPED_TOKEN_SCOPE: TokenScope = 'admin';

export const MIN_TOKEN_LENGTH = 16;

export interface ApiTokenEntry {
  token: string;
  scope: TokenScope;
}

/**
 * Parses one `STREAMSEG_API_TOKENS` entry: `<token>` or `<token>:<scope>`. Returns the entry, or
 * a message saying what is wrong (the token itself is never repeated in it).
 */
export function parseApiTokenEntry(entry: string): ApiTokenEntry | { problem: string } {
  const at = entry.lastIndexOf(':');
  const token = at < 0 ? entry : entry.slice(0, at);
  const scope = at < 0 ? UNSCOPED_TOKEN_SCOPE : entry.slice(at + 1);
  const shown = `entry ${describeToken(token)}`;
  if (!(TOKEN_SCOPES as readonly string[]).includes(scope)) {
    return { problem: `${shown}: unknown scope "${scope.slice(0, 20)}" (write <token>:read, <token>:submit or <token>:admin; a token alone means admin)` };
  }
  if (token.length < MIN_TOKEN_LENGTH) return { problem: `${shown}: each token must have at least ${MIN_TOKEN_LENGTH} characters` };
  if (/[\s,]/.test(token)) return { problem: `${shown}: a token holds no whitespace or comma` };
  return { token, scope: scope as TokenScope };
}

/** Every problem of a token list (bad entries, a token given twice), one line each. */
export function apiTokenProblems(entries: readonly string[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const parsed = parseApiTokenEntry(entry);
    if ('problem' in parsed) problems.push(`#${i + 1} ${parsed.problem}`);
    else if (seen.has(parsed.token)) problems.push(`#${i + 1} entry ${describeToken(parsed.token)}: the same token is listed twice`);
    else seen.add(parsed.token);
  });
  return problems;
}

/** Parses a validated list (config has checked it). */
export function parseApiTokens(entries: readonly string[]): ApiTokenEntry[] {
  return entries.map((entry) => {
    const parsed = parseApiTokenEntry(entry);
    if ('problem' in parsed) throw new RangeError(parsed.problem);
    return parsed;
  });
}

/** Whether `held` grants what `needed` asks. */
export function scopeAllows(held: TokenScope, needed: TokenScope): boolean {
  return TOKEN_SCOPES.indexOf(held) >= TOKEN_SCOPES.indexOf(needed);
}

/** A stable, non-secret id of a token (what videos record as their owner, and limits count by). */
export function tokenId(token: string): string {
  return createHash('sha256').update(`streamseg-token-id:${token}`, 'utf8').digest('hex').slice(0, 16);
}

/** How a token is named in messages: its first 4 characters and its length, never the whole. */
function describeToken(token: string): string {
  return `"${token.slice(0, 4)}…" (${token.length} characters)`;
}
