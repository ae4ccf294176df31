import type { FastifyInstance, FastifyRequest } from 'fastify';
import { scopeAllows } from '../../shared/api-tokens.js';
import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import { sendAuthError } from './auth-error-reply.js';
import { requiredScope } from './scope-policy.js';
import type { ApiPrincipal, TokenVerifier } from './token-verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token that authenticated the request; unset on public paths. */
    principal?: ApiPrincipal;
  }
}

/** Name of the cookie the web page sets, for what a browser cannot send headers with (video, EventSource, bull-board). */
export const TOKEN_COOKIE = 'streamseg_token';

/** Paths anyone may read: probes, and the web page's static files (they hold no data; the page asks for a token). */
const PUBLIC_PATHS = [/^\/healthz$/, /^\/readyz$/, /^\/$/, /^\/web(\/.*)?$/];

/**
 * Every request but the public paths needs `Authorization: Bearer <token>`, or the token
 * cookie. The cookie (SameSite=Strict) is accepted for writes only from the same origin.
 */
export function registerBearerAuth(app: FastifyInstance, verifier: TokenVerifier): void {
  app.decorateRequest('principal', undefined);
  // Answers here rather than throwing: plugins with their own error handler (bull-board) would reshape the error.
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (PUBLIC_PATHS.some((p) => p.test(path))) return;
    let principal = verifier.identify(bearerToken(request));
    if (!principal) {
      const cookie = cookieToken(request);
      if (cookie !== undefined && sameOriginOrSafe(request)) principal = verifier.identify(cookie);
    }
    if (!principal) {
      const error = new HttpError(
        401,
        ErrorCode.UNAUTHORIZED,
        'missing or invalid token: send "Authorization: Bearer <token>" with a token from STREAMSEG_API_TOKENS',
      );
      return sendAuthError(request, reply, error);
    }
    const needed = requiredScope(request.method, path);
    if (!scopeAllows(principal.scope, needed)) {
      const error = new HttpError(
        403,
        ErrorCode.FORBIDDEN,
        `this token has scope "${principal.scope}"; ${request.method} ${path} needs "${needed}" (an STREAMSEG_API_TOKENS entry <token>:${needed})`,
      );
      return sendAuthError(request, reply, error, principal.scope);
    }
    request.principal = principal;
  });
}

function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}

function cookieToken(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name !== TOKEN_COOKIE) continue;
    // A malformed escape (%E0%A4%A) is no token: a 401, not a URIError.
    try {
      return decodeURIComponent(rest.join('='));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function sameOriginOrSafe(request: FastifyRequest): boolean {
  if (request.method === 'GET' || request.method === 'HEAD') return true;
  const origin = request.headers.origin;
  if (!origin) return false;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}
