import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import type * as Eoc from 'express-openid-connect';
import type { Config } from '../../config';
import type { Logger } from '../../log';
import { tokenSystemCodeKey } from '../../search/values';
import type { ResourceStore } from '../../store/types';
import { PageError } from '../errors';
import { loadEsm, native } from '../esm';
import type { Secrets } from '../keys';
import type { InteractionKit } from './kit';

/** The cookie of the upstream session (express-openid-connect's appSession). */
const SESSION = 'pro_session';

/** FR Core's RPPS identifier system, and the national one (urn:oid:1.2.250.1.71.4.2.1 is the ADELI/RPPS OID). */
export const RPPS_SYSTEMS = ['https://rpps.esante.gouv.fr', 'urn:oid:1.2.250.1.71.4.2.1'];

interface Upstream {
  middleware: RequestHandler;
  rppsOf(req: Request): Promise<string | undefined>;
  endSession(req: Request): void;
}

/**
 * Professionals sign in through an upstream OpenID Connect provider (in France, Pro Santé Connect)
 * with express-openid-connect; the RPPS number of the identity is matched to a Practitioner. The
 * upstream session only lives until its identity has been read (endSession): this server issues
 * its own tokens.
 */
function upstreamLogin(config: Config, secrets: Secrets, issuer: string): Upstream {
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

/** The Practitioner whose FR Core RPPS identifier is `rpps` (the index's own token keys, as `identifier=system|value` searches them). */
async function findPractitioner(store: ResourceStore, rpps: string): Promise<string | undefined> {
  const keys = RPPS_SYSTEMS.map((s) => tokenSystemCodeKey(s, rpps));
  const page = await store.search({ scopes: [{ type: 'Practitioner', conditions: [{ kind: 'key', param: 'identifier', keys }] }], sort: [], count: 2, total: 'none' });
  return page.items.length === 1 ? page.items[0].id : undefined;
}

/**
 * `GET /interaction/:uid/pro` sends the professional upstream and, back from there
 * (`/pro/callback`), signs in the Practitioner of their RPPS number. An unknown number, or an
 * upstream that refused or whose answer did not check out, ends on a page whose button goes back
 * to the software (access_denied).
 */
export function proRoutes(router: Router, o: { kit: InteractionKit; store: ResourceStore; log: Logger; config: Config; secrets: Secrets; issuer: string; authPath: string }): void {
  const { kit } = o;
  const upstream = upstreamLogin(o.config, o.secrets, o.issuer);
  router.use(upstream.middleware);
  router.get('/interaction/:uid/pro', async (req, res) => {
    const d = await kit.details(req, res);
    if (d.prompt.name !== 'login') return res.redirect(kit.path(d.uid));
    if (!req.oidc?.isAuthenticated()) return res.oidc.login({ returnTo: `${kit.path(d.uid)}/pro` });
    const rpps = await upstream.rppsOf(req);
    upstream.endSession(req);
    const practitioner = rpps ? await findPractitioner(o.store, rpps) : undefined;
    if (!practitioner) throw new PageError(403, 'Accès refusé', 'Votre identité de professionnel de santé (RPPS) ne correspond à aucun professionnel connu de ce serveur.', kit.backTo(d.uid, await kit.clientName(d.params), 'pro-unknown'));
    await kit.provider.interactionFinished(req, res, native({ login: { accountId: `practitioner:${practitioner}` } }), { mergeWithLastSubmission: false });
  });
  // the upstream refused or its answer did not check out (state, nonce, ID token): not a failure of this server
  router.use(async (err: Error, req: Request, res: Response, next: NextFunction) => {
    if (req.path !== '/pro/callback' || res.headersSent) return next(err);
    const code = (err as { error?: unknown }).error;
    o.log.warn({ err: typeof code === 'string' ? code : err.name }, 'professional sign-in through the upstream provider failed');
    // the sign-in it came from: express-openid-connect read it from its own signed cookie
    const uid = new RegExp(`^${o.authPath}/interaction/([A-Za-z0-9_-]+)/pro$`).exec((req as { openidState?: { returnTo?: string } }).openidState?.returnTo ?? '')?.[1];
    const interaction = uid ? await kit.provider.Interaction.find(uid) : undefined;
    const back = interaction ? kit.backTo(uid!, await kit.clientName(interaction.params), 'pro-refused') : undefined;
    next(new PageError(401, 'Connexion impossible', `La connexion avec Pro Santé Connect n’a pas abouti.${back ? '' : ' Recommencez depuis votre logiciel.'}`, back));
  });
}
