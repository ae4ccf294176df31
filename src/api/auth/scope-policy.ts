import type { TokenScope } from '../../shared/api-tokens.js';

/**
 * The scope a request needs, from its method and path. Reads need `read`; submitting, and
 * stopping or cancelling a video, `submit` (the route then refuses others' videos unless the
 * token is `admin`); adapter writes, /admin/queues (bull-board can retry and remove jobs) and
 * any other write, `admin`.
 */
export function requiredScope(method: string, path: string): TokenScope {
  if (path === '/admin' || path.startsWith('/admin/')) return 'admin';
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return 'read';
  if (method === 'POST' && path === '/v1/videos') return 'submit';
  if ((method === 'POST' && /^\/v1\/videos\/[^/]+\/stop$/.test(path)) || (method === 'DELETE' && /^\/v1\/videos\/[^/]+$/.test(path))) return 'submit';
  return 'admin';
}

/** What a route that acts on one video needs beyond `submit`: the token that submitted it, or `admin`. */
export const OTHERS_VIDEOS_SCOPE: TokenScope = 'admin';
