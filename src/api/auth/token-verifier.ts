import { createHash, timingSafeEqual } from 'node:crypto';
import { tokenId, type ApiTokenEntry, type TokenScope } from '../../shared/api-tokens.js';

/** Who sent a request: the token's non-secret id (videos record it as their owner) and its scope. */
export interface ApiPrincipal {
  id: string;
  scope: TokenScope;
}

/**
 * Checks bearer tokens in constant time: every configured token is compared (no early exit),
 * each through SHA-256 digests of equal length, so neither the token's content nor its length
 * leaks through timing.
 */
export class TokenVerifier {
  private readonly entries: { digest: Buffer; principal: ApiPrincipal }[];

  /** Plain strings are tokens with every right (admin), as before scopes. */
  constructor(tokens: readonly (string | ApiTokenEntry)[]) {
    if (tokens.length === 0) throw new RangeError('at least one API token is required');
    this.entries = tokens.map((entry) => {
      const { token, scope } = typeof entry === 'string' ? { token: entry, scope: 'admin' as const } : entry;
      return { digest: digest(token), principal: { id: tokenId(token), scope } };
    });
  }

  /** The principal of a valid token, or null. */
  identify(candidate: string | undefined): ApiPrincipal | null {
    if (!candidate) return null;
    const given = digest(candidate);
    let found: ApiPrincipal | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(given, entry.digest)) found = entry.principal;
    }
    return found;
  }

  verify(candidate: string | undefined): boolean {
    return this.identify(candidate) !== null;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
