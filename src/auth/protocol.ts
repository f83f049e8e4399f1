import express, { type Request, type Router } from 'express';
import { decodeJwt } from 'jose';
import { FhirError } from '../outcome';
import { OAuthError } from './errors';
import type { Provider } from './provider';
import { secretDigest } from './registry';
import type { Verify } from './verify';

/**
 * The OAuth endpoints under Express: introspection of the JWT access tokens here; authorize,
 * token, introspection of refresh tokens, revocation and JWKS by oidc-provider, mounted last.
 */
export function protocolRoutes(router: Router, o: { provider: Provider; verify: Verify }): void {
  router.post('/introspect', express.urlencoded({ extended: false, limit: '20kb' }), introspection(o.verify));
  const callback = o.provider.callback();
  router.use((req, res, next) => {
    basicSecretDigested(req);
    Promise.resolve(callback(req, res)).catch(next);
  });
}

/**
 * RFC 7662 for the JWT access tokens (oidc-provider introspects only its opaque tokens, the
 * refresh tokens, which go on to it): the caller authenticates with a bearer token of its own.
 */
function introspection(verify: Verify): express.RequestHandler {
  return async (req, res, next) => {
    const t = typeof req.body?.token === 'string' ? req.body.token : '';
    if (t.split('.').length !== 3) return next();
    try {
      await verify(req.get('authorization'));
    } catch (e) {
      if (!(e instanceof FhirError) || e.status !== 401) throw e;
      throw new OAuthError(401, 'invalid_client', 'Introspection of access tokens needs an access token in the Authorization header', { 'WWW-Authenticate': 'Bearer', 'Cache-Control': 'no-store' });
    }
    res.set('Cache-Control', 'no-store');
    try {
      const a = await verify(`Bearer ${t}`);
      const c = decodeJwt(t);
      return res.json({ active: true, token_type: 'Bearer', scope: a.scope, client_id: a.clientId, sub: c.sub, iss: c.iss, aud: c.aud, exp: c.exp, iat: c.iat, jti: c.jti, ...(a.patient ? { patient: a.patient } : {}), ...(a.fhirUser ? { fhirUser: a.fhirUser } : {}) });
    } catch {
      return res.json({ active: false });
    }
  };
}

/**
 * Client secrets are stored as their SHA-256 only: the client_secret_basic credentials of a request
 * are rewritten to carry the digest of the presented secret, which the provider then compares (in
 * constant time) with the stored digest. Credentials that do not decode are left for the provider
 * to refuse.
 */
function basicSecretDigested(req: Request): void {
  const m = /^basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return;
  const basic = Buffer.from(m[1], 'base64').toString('utf8');
  const i = basic.indexOf(':');
  if (i < 0) return;
  let secret: string;
  try {
    secret = decodeURIComponent(basic.slice(i + 1).replace(/\+/g, '%20'));
  } catch {
    return;
  }
  req.headers.authorization = `Basic ${Buffer.from(`${basic.slice(0, i)}:${secretDigest(secret)}`).toString('base64')}`;
}
