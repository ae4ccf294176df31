import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Checks bearer tokens in constant time: every configured token is compared (no early exit),
 * each through SHA-256 digests of equal length, so neither the token's content nor its length
 * leaks through timing.
 */
export class TokenVerifier {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    if (tokens.length === 0) throw new RangeError('at least one API token is required');
    this.digests = tokens.map(digest);
  }

  verify(candidate: string | undefined): boolean {
    if (!candidate) return false;
    const given = digest(candidate);
    let ok = false;
    for (const expected of this.digests) ok = timingSafeEqual(given, expected) || ok;
    return ok;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
