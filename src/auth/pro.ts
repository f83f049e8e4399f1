import type { Request, RequestHandler } from 'express';
import type * as Eoc from 'express-openid-connect';
import { loadEsm, native } from './esm';
import type { Config } from '../config';
import type { Secrets } from './keys';

/** The cookie of the upstream session (express-openid-connect's appSession). */
const SESSION = 'pro_session';

/**
 * Professionals sign in through an upstream OpenID Connect provider (in France, Pro Santé Connect)
 * with express-openid-connect; the RPPS number of the identity is matched to a Practitioner. The
 * upstream session only lives until its identity has been read (endSession): this server issues
 * its own tokens.
 */
export function proLogin(config: Config, secrets: Secrets, issuer: string): { middleware: RequestHandler; rppsOf(req: Request): Promise<string | undefined>; endSession(req: Request): void } {
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
    session: { name: SESSION, rolling: false, absoluteDuration: 15 * 60, cookie: { sameSite: 'Lax' } },
    // a loopback upstream in development and tests
    enableTelemetry: false,
  }));
  /**
   * The RPPS number of the signed-in professional. The claim (PRO_OIDC_RPPS_CLAIM, SubjectNameID by
   * default) is read from the ID token when the provider puts it there, else from the userinfo
   * endpoint (Pro Santé Connect serves SubjectNameID in its userinfo, with the access token of the
   * upstream session). Pro Santé Connect's SubjectNameID is the national id: "8" + the 11-digit
   * RPPS number; a bare RPPS number is taken as it is.
   */
  const rppsOf = async (req: Request): Promise<string | undefined> => {
    let v = req.oidc?.user?.[pro.rppsClaim];
    if (v === undefined && req.oidc?.accessToken) v = (await req.oidc.fetchUserInfo())[pro.rppsClaim];
    if (typeof v !== 'string') return undefined;
    return v.length === 12 && v.startsWith('8') ? v.slice(1) : v;
  };
  /**
   * Ends the upstream session once its identity has been read (its cookie is cleared with the
   * response): the next authorization in the same browser goes upstream again instead of reusing
   * the last professional's identity (a shared workstation), and a refused identity can retry.
   */
  const endSession = (req: Request) => {
    (req as unknown as Record<string, unknown>)[SESSION] = undefined;
  };
  return { middleware, rppsOf, endSession };
}
