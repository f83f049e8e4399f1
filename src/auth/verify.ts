import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { FhirError } from '../outcome';
import { accessFromToken, type Access } from '../policy/access';
import { SIGNING_ALGS } from './keys';
import type { ClientRegistry } from './registry';

/** The resource server's check of a bearer token: the caller of a request, or a 401/403 FhirError. */
export type Verify = (authorization: string | undefined) => Promise<Access>;

const unauthorized = (fhirBase: string, message: string, error = 'invalid_token') =>
  new FhirError(401, 'login', message, undefined, { 'WWW-Authenticate': `Bearer realm="${fhirBase}", error="${error}", error_description="${message.replace(/"/g, "'")}"` });

/** How many checked signatures are remembered (the oldest is forgotten first). */
const VERIFIED_CACHE = 10000;

/**
 * Access tokens are JWTs verified locally against the server's own public keys (signature, issuer,
 * audience, expiry). A signature checked once is not checked again until the token expires; whether
 * its client is still referenced and its grant not revoked is checked on every request, so that
 * such tokens stop at once.
 */
export function tokenVerifier(o: { issuer: string; fhirBase: string; publicJwks: { keys: JWK[] }; clients: ClientRegistry; grantExists(grantId: string): Promise<boolean> }): Verify {
  const { issuer, fhirBase, clients } = o;
  const localKeys = createLocalJWKSet(o.publicJwks);
  const verified = new Map<string, Record<string, unknown>>();

  const claimsOf = async (token: string): Promise<Record<string, unknown>> => {
    const known = verified.get(token);
    if (known && (known.exp as number) * 1000 > Date.now()) return known;
    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(token, localKeys, { issuer, audience: fhirBase, algorithms: SIGNING_ALGS, requiredClaims: ['exp', 'iat', 'jti', 'client_id'], clockTolerance: 5 }));
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw unauthorized(fhirBase, code === 'ERR_JWT_EXPIRED' ? 'The access token has expired' : 'The access token is not valid for this server');
    }
    if (verified.size >= VERIFIED_CACHE) verified.delete(verified.keys().next().value!);
    verified.set(token, claims);
    return claims;
  };

  return async (authorization) => {
    if (!authorization) throw unauthorized(fhirBase, 'This request needs an access token (Authorization: Bearer ...)', 'invalid_request');
    const m = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)$/i.exec(authorization.trim());
    if (!m) throw unauthorized(fhirBase, 'The Authorization header must be "Bearer <access token>"', 'invalid_request');
    const claims = await claimsOf(m[1]);
    if (typeof claims.client_id !== 'string') throw unauthorized(fhirBase, 'The access token names no client');
    const client = await clients.get(claims.client_id);
    if (!client || client.status !== 'referenced') throw unauthorized(fhirBase, 'The client of this access token is suspended or unknown');
    // tokens of a revoked grant (code reuse, refresh token revoked or reused) stop at once
    if (typeof claims.gid === 'string' && !(await o.grantExists(claims.gid))) throw unauthorized(fhirBase, 'The access token has been revoked');
    return accessFromToken(claims as never);
  };
}
