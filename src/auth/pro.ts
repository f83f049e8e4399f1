import type { RequestHandler } from 'express';
import type * as Eoc from 'express-openid-connect';
import { loadEsm, native } from './esm';
import type { Config } from '../config';
import type { Secrets } from './keys';

/**
 * Professionals sign in through an upstream OpenID Connect provider (in France, Pro Santé Connect)
 * with express-openid-connect; the RPPS number of the identity is matched to a Practitioner. The
 * upstream session only lives until the interaction ends: this server issues its own tokens.
 */
export function proLogin(config: Config, secrets: Secrets, issuer: string): { middleware: RequestHandler; rppsOf(user: Record<string, unknown>): string | undefined } {
  const pro = config.proOidc!;
  // express-openid-connect is CommonJS but depends on the ES-module-only openid-client: load it natively
  const { auth } = loadEsm<typeof Eoc>('express-openid-connect');
  const middleware = auth(native({
    issuerBaseURL: pro.issuer,
    baseURL: issuer,
    clientID: pro.clientId,
    clientSecret: pro.clientSecret,
    secret: secrets.cookieKeys[0],
    authRequired: false,
    idpLogout: false,
    routes: { login: false, logout: false, callback: '/pro/callback' },
    authorizationParams: { response_type: 'code', scope: pro.scope },
    session: { name: 'pro_session', rolling: false, absoluteDuration: 15 * 60, cookie: { sameSite: 'Lax' } },
    // a loopback upstream in development and tests
    enableTelemetry: false,
  }));
  const rppsOf = (user: Record<string, unknown>) => {
    const v = user[pro.rppsClaim];
    if (typeof v !== 'string') return undefined;
    // Pro Santé Connect's SubjectNameID is the national id: "8" + RPPS for an RPPS number
    return v.length === 12 && v.startsWith('8') ? v.slice(1) : v;
  };
  return { middleware, rppsOf };
}
