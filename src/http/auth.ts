/**
 * Bearer-token check. When a token is configured every request must carry `Authorization: Bearer <token>`,
 * except the dashboard page and its assets (they hold no data; the page asks for the token when the API
 * answers 401).
 *
 * The comparison hashes both sides with SHA-256 and compares the digests with `timingSafeEqual`, so the time it
 * takes says nothing about the token's length or how many leading characters matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ErrorCodes, invalidOption } from '../errors.ts';
import { errorBody } from './errors.ts';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Shortest token accepted: a guessable token on a public address is worse than none. */
export const MIN_TOKEN_LENGTH = 16;

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** Validates a configured token (why: refuse a weak or malformed token at startup, not at the first request). */
export function validateToken(token: unknown, path = 'http.token'): string {
  if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || token.length > 4096 || /\s/.test(token)) {
    throw invalidOption(path, `a string of at least ${MIN_TOKEN_LENGTH} characters without spaces`, token === undefined ? undefined : '[redacted]');
  }
  return token;
}

/** A constant-time checker for one token (why: the hash of the secret is computed once, never compared by `===`). */
export function createTokenCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token);
  return (authorization) => {
    if (typeof authorization !== 'string') return false;
    const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization);
    const given = digest(m ? m[1]! : '');
    return timingSafeEqual(given, expected) && m !== null;
  };
}

/** True for an address that only this machine can reach (why: the one case where no token is required). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** Route config that marks a route as loadable without the token (the dashboard page and its assets). */
export interface PublicRouteConfig {
  public?: boolean;
}

/**
 * A fastify `onRequest` hook answering 401 to requests without the right token. It keys on the matched route,
 * not on the URL text, so an encoded or odd-cased path cannot slip past: only routes declared with
 * `config: { public: true }` are open.
 */
export function createAuthHook(token: string): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const check = createTokenCheck(token);
  return async (request, reply) => {
    const config = request.routeOptions.config as PublicRouteConfig | undefined;
    if (config?.public === true) return;
    if (check(request.headers.authorization)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="troupe"')
      .send(errorBody(ErrorCodes.UNAUTHORIZED, 'This API needs `Authorization: Bearer <token>` (the TROUPE_TOKEN of the server)'));
  };
}
