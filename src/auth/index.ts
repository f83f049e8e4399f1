import { createHmac, randomBytes, randomInt, createHash, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, type NextFunction } from 'express';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JWK } from 'jose';
import type * as OidcProviderModule from 'oidc-provider';
import type { Config } from '../config';
import type { Logger } from '../log';
import { FhirError } from '../outcome';
import { accessFromToken, forbidden, type Access } from '../policy/access';
import { describeScope, grantable, parseScope } from '../policy/scopes';
import { tokenSystemCodeKey } from '../search/values';
import type { ResourceStore } from '../store/types';
import { adapterFor } from './adapter';
import { Attempts } from './attempts';
import { loadEsm, native } from './esm';
import { loadSecrets, publicJwk, type Secrets } from './keys';
import { failedSignInsMessage, FileMessageSender, oneTimeCodeMessage, type MessageSender } from '../messaging';
import { consentPage, errorPage, loginPage, otpPage, type Back } from './pages';
import { AccountRegistry, ClientRegistry, FREE_TRIES_PER_ADDRESS, secretDigest, type RegisteredClient } from './registry';
import { proLogin } from './pro';

type ProviderModule = typeof OidcProviderModule;
type Provider = OidcProviderModule.default;
type KoaContext = OidcProviderModule.KoaContextWithOIDC;

/** Launch context of a grant: the patient the tokens are about, the signed-in user. */
export interface LaunchContext {
  patient?: string;
  fhirUser?: string;
}

/** A launch issued by a professional's software for an EHR launch (`launch` parameter). */
interface Launch {
  patient: string;
  issuedBy: string;
  /** the signed-in user of the token that issued it (`Practitioner/..`): only they may use it */
  user?: string;
  expiresAt: number;
}

const OTP_TTL_MS = 15 * 60 * 1000;
const OTP_MAX_ATTEMPTS = 5;
/** How long a browser where an account signed in is known as its owner's (it then escapes the slow-down of tries from many addresses). */
const DEVICE_COOKIE_DAYS = 180;
const LAUNCH_TTL_S = 300;
const LAUNCH_SCOPE_WITHOUT_LAUNCH = 'The launch scope goes with the launch parameter of an EHR launch (a standalone launch asks for launch/patient)';
/** What the app is told when the sign-in ends without a code, by the reason the page gave. */
const ABORT_REASONS: Record<string, string> = {
  cancelled: 'The user cancelled the sign-in',
  'pro-refused': 'The professional identity provider (Pro Santé Connect) did not sign the user in',
  'pro-unknown': "The professional's RPPS number matches no Practitioner on this server",
};
const ASSERTION_MAX_LIFETIME_S = 300;
/** The signing algorithms of access tokens, ID tokens and client assertions. */
export const SIGNING_ALGS = ['RS384', 'ES384'];
const CLIENT_ASSERTION_ALGS = ['RS384', 'ES384', 'RS256', 'ES256', 'PS384'];

export interface Auth {
  issuer: string;
  trustProxy: boolean;
  fhirBase: string;
  provider: Provider;
  clients: ClientRegistry;
  accounts: AccountRegistry;
  /** Express routes under /auth: the provider, the interaction pages, the launch and admin APIs */
  router: express.Router;
  /** The caller of a FHIR request from its Authorization header; throws 401/403 FhirErrors. */
  verify(authorization: string | undefined): Promise<Access>;
  smartConfiguration(): Record<string, unknown>;
  /** Whether a browser page from `origin` may call the FHIR API: it is the origin of a redirect URI of a referenced app. */
  allowsOrigin(origin: string): Promise<boolean>;
  endpoints: { authorize: string; token: string; introspect: string; revoke: string; jwks: string; register: string; manage: string; launch: string };
  publicJwks: { keys: JWK[] };
}

export interface AuthOptions {
  config: Config;
  store: ResourceStore;
  log: Logger;
  /** defaults to the file sender of the data directory */
  sender?: MessageSender;
  secrets?: Secrets;
}

/** `https://h/x/fhir` → `https://h/x/auth`: the authorization server lives beside the FHIR base. */
export function issuerFor(fhirBase: string): string {
  return `${fhirBase.replace(/\/fhir$/, '')}/auth`;
}

const unauthorized = (fhirBase: string, message: string, error = 'invalid_token') =>
  new FhirError(401, 'login', message, undefined, { 'WWW-Authenticate': `Bearer realm="${fhirBase}", error="${error}", error_description="${message.replace(/"/g, "'")}"` });

export async function createAuth(opts: AuthOptions): Promise<Auth> {
  const { config, store, log } = opts;
  if (!config.baseUrl) throw new Error('Authorization needs the public FHIR base (BASE_URL)');
  const fhirBase = config.baseUrl;
  const issuer = issuerFor(fhirBase);
  const authPath = new URL(issuer).pathname;
  const secrets = opts.secrets ?? (await loadSecrets(config.dataDir, { signingKeys: config.signingKeys, authSecret: config.authSecret }));
  const sender = opts.sender ?? new FileMessageSender(config.dataDir);
  const clients = new ClientRegistry(store);
  const accounts = new AccountRegistry(store);
  const { default: ProviderClass, errors } = loadEsm<ProviderModule>('oidc-provider');
  const publicJwks = { keys: secrets.signingKeys.map(publicJwk) };
  const localKeys = createLocalJWKSet(publicJwks);

  const endpoints = {
    authorize: `${issuer}/authorize`,
    token: `${issuer}/token`,
    introspect: `${issuer}/introspect`,
    revoke: `${issuer}/revoke`,
    jwks: `${issuer}/jwks`,
    register: `${issuer}/admin/clients`,
    manage: `${issuer}/admin/clients`,
    launch: `${issuer}/launch`,
  };

  const contextOf = async (grantId: string | undefined): Promise<LaunchContext> => (grantId ? ((await store.getState<LaunchContext | null>(`smart:context:${grantId}`)) ?? {}) : {});

  /** The SMART scopes of the request at hand, as far as the client may receive them. */
  const requestedScopes = async (ctx: KoaContext): Promise<string | undefined> => {
    const params = ctx.oidc.params as Record<string, string | undefined>;
    if (ctx.oidc.route === 'token') {
      if (params.grant_type === 'authorization_code' && params.code) return (await provider.AuthorizationCode.find(params.code, { ignoreExpiration: true }))?.scope ?? undefined;
      if (params.grant_type === 'refresh_token' && params.refresh_token) return params.scope ?? (await provider.RefreshToken.find(params.refresh_token, { ignoreExpiration: true }))?.scope ?? undefined;
    }
    return params.scope;
  };

  const provider: Provider = new ProviderClass(issuer, native<Record<string, unknown>>({
    adapter: ((Adapter) => (name: string) => new Adapter(name))(adapterFor(store, clients, errors.InvalidGrant)) as never,
    clients: [],
    // JWKS URLs of clients: fetched with oidc-provider's SSRF protection (its dispatcher), except
    // for the hosts the operator trusts with a private address
    fetch: (url: URL | string, options: RequestInit & { dispatcher?: unknown }) => {
      if (config.jwksPrivateHosts.includes(new URL(url).hostname.toLowerCase())) delete options.dispatcher;
      return fetch(url, options);
    },
    jwks: { keys: secrets.signingKeys as never },
    cookies: { keys: secrets.cookieKeys },
    async findAccount(_ctx: unknown, sub: string) {
      return native({ accountId: sub, claims: async () => native({ sub, fhirUser: await fhirUserOf(sub) }) });
    },
    claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
    scopes: ['openid', 'offline_access', 'online_access', 'fhirUser', 'launch', 'launch/patient'],
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    clientAuthMethods: ['private_key_jwt', 'client_secret_basic', 'none'],
    enabledJWA: { clientAuthSigningAlgValues: CLIENT_ASSERTION_ALGS as never, idTokenSigningAlgValues: SIGNING_ALGS as never },
    clientDefaults: { id_token_signed_response_alg: 'RS384', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'private_key_jwt' },
    allowOmittingSingleRegisteredRedirectUri: false,
    // browser apps (public clients) call the token, revocation and userinfo endpoints from the origin of their redirect URIs
    clientBasedCORS(_ctx: KoaContext, origin: string, client: { clientAuthMethod: string; redirectUris: string[] }) {
      return origin !== 'null' && client.clientAuthMethod === 'none' && client.redirectUris.some((uri) => originOf(uri) === origin);
    },
    // Each EHR launch gets a grant of its own: its launch context (the patient) is the grant's, so
    // a second launch of the same app in the same session, for another patient, must not reuse the
    // first one's grant (and context); it goes through consent, where its context is recorded.
    async loadExistingGrant(ctx: KoaContext) {
      const grantId = ctx.oidc.result?.consent?.grantId || ((ctx.oidc.params as Record<string, unknown>).launch ? undefined : ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId));
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    extraParams: {
      // SMART: `aud` must name this server's FHIR base, so a token is never requested for another server
      aud(ctx: KoaContext, value: string | undefined) {
        if (ctx.oidc.route !== 'authorization' && ctx.oidc.route !== 'resume') return;
        if (value === undefined) throw new errors.InvalidRequest('aud is required: the FHIR base URL of this server');
        if (value.replace(/\/+$/, '') !== fhirBase) throw new errors.InvalidRequest(`aud must be this server's FHIR base URL, ${fhirBase}`);
      },
      // an EHR launch is checked before anyone signs in (again at consent, where it is used)
      async launch(ctx: KoaContext, value: string | undefined) {
        if (ctx.oidc.route !== 'authorization') return;
        if (value === undefined) {
          if (String((ctx.oidc.params as Record<string, unknown>).scope ?? '').split(' ').includes('launch')) throw new errors.InvalidScope(LAUNCH_SCOPE_WITHOUT_LAUNCH, 'launch');
          return;
        }
        const launch = await store.getState<Launch>(`smart:launch:${value}`);
        if (!launch) throw new errors.InvalidRequest('The launch is unknown or has expired');
      },
    } as never,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => fhirBase,
        useGrantedResource: () => true,
        async getResourceServerInfo(ctx: KoaContext, indicator: string, client: OidcProviderModule.Client) {
          if (indicator.replace(/\/+$/, '') !== fhirBase) throw new errors.InvalidTarget(`The only resource is ${fhirBase}`);
          const registered = (await clients.get(client.clientId))?.scope ?? '';
          const requested = (await requestedScopes(ctx)) ?? '';
          const { granted, refused } = grantable(requested, registered);
          const resourceRefused = refused.filter((s) => parseScope(s));
          // a backend asks for exactly what it needs: beyond its registration is an error, not a silent cut
          if ((ctx.oidc.params as Record<string, string>).grant_type === 'client_credentials' && resourceRefused.length) {
            throw new errors.InvalidScope(`requested scope is not allowed for this client: ${resourceRefused.join(' ')}`, resourceRefused[0]);
          }
          const scope = granted.filter((s) => parseScope(s)).join(' ');
          return native({ scope, audience: fhirBase, accessTokenTTL: config.accessTokenTtl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS384' } } });
        },
      },
    } as never,
    async assertJwtClientAuthClaimsAndHeader(_ctx: KoaContext, claims: Record<string, unknown>) {
      // SMART Backend Services / RFC 7523: a short-lived assertion with a jti (replays are refused by the provider)
      const now = Math.floor(Date.now() / 1000);
      if (typeof claims.exp !== 'number') throw new errors.InvalidClientAuth('the client assertion needs exp');
      if (claims.exp - now > ASSERTION_MAX_LIFETIME_S + 15) throw new errors.InvalidClientAuth(`the client assertion's exp must be at most ${ASSERTION_MAX_LIFETIME_S} seconds ahead`);
      if (typeof claims.jti !== 'string' || !claims.jti) throw new errors.InvalidClientAuth('the client assertion needs a jti');
    },
    async extraTokenClaims(_ctx: KoaContext, token: { grantId?: string; kind: string }) {
      if (!token.grantId) return undefined;
      const c = await contextOf(token.grantId);
      return native({ ...(c.patient ? { patient: c.patient } : {}), ...(c.fhirUser ? { fhirUser: c.fhirUser } : {}), gid: token.grantId });
    },
    issueRefreshToken: async (_ctx: KoaContext, client: OidcProviderModule.Client, code: { scopes: Set<string> }) =>
      client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || code.scopes.has('online_access')),
    expiresWithSession: async (_ctx: KoaContext, code: { scopes: Set<string> }) => !code.scopes.has('offline_access'),
    rotateRefreshToken: true,
    revokeGrantPolicy: () => true,
    ttl: {
      AccessToken: config.accessTokenTtl,
      ClientCredentials: config.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 15 * 60,
      Session: 8 * 3600,
      Grant: config.refreshTokenTtl,
      RefreshToken: (_ctx: KoaContext, token: { scopes: Set<string> }) => (token.scopes.has('offline_access') ? config.refreshTokenTtl : 8 * 3600),
    } as never,
    interactions: { url: (_ctx: KoaContext, interaction: { uid: string }) => `${authPath}/interaction/${interaction.uid}` },
    routes: { authorization: '/authorize', token: '/token', introspection: '/introspect', revocation: '/revoke', jwks: '/jwks' },
    async renderError(ctx: KoaContext, out: Record<string, string>) {
      ctx.type = 'html';
      ctx.body = errorPage('Erreur', `${out.error}${out.error_description ? ` : ${out.error_description}` : ''}`);
    },
  }) as never);
  if (config.trustProxy) provider.proxy = true;

  provider.use(async (ctx: KoaContext, next: () => Promise<void>) => {
    // OpenID Connect drops offline_access unless prompt=consent; SMART apps ask for it without
    // prompt, and this server always shows its consent page for it: make that explicit
    if (ctx.method === 'GET' && ctx.path === '/authorize') {
      const q = new URLSearchParams(ctx.querystring);
      if (!q.has('prompt') && !q.has('request') && (q.get('scope') ?? '').split(' ').includes('offline_access')) {
        q.set('prompt', 'consent');
        ctx.querystring = q.toString();
      }
    }
    await next();
    // SMART token responses name the launch context beside the token
    const body = ctx.body as Record<string, unknown> | undefined;
    if (ctx.oidc?.route === 'token' && ctx.status === 200 && body && typeof body.access_token === 'string') {
      const claims = decodeJwt(body.access_token);
      // SMART: the response's scope names every granted scope, the OpenID ones (openid, fhirUser, launch/patient, offline_access) too
      const entities = ctx.oidc.entities as { AuthorizationCode?: { scopes: Set<string> }; RefreshToken?: { scopes: Set<string> }; Grant?: { getOIDCScopeFiltered(s: Set<string>): string } };
      const source = entities.AuthorizationCode ?? entities.RefreshToken;
      if (source && entities.Grant) {
        const oidcScopes = entities.Grant.getOIDCScopeFiltered(source.scopes).split(' ').filter(Boolean);
        if (typeof body.refresh_token === 'string' && !oidcScopes.includes('offline_access') && source.scopes.has('offline_access')) oidcScopes.push('offline_access');
        body.scope = [...new Set([...oidcScopes, ...String(body.scope ?? '').split(' ').filter(Boolean)])].join(' ');
      }
      if (typeof claims.patient === 'string') {
        body.patient = claims.patient;
        body.need_patient_banner = true;
      }
    }
  });
  provider.on('server_error', (_ctx: unknown, err: Error) => (process.env.DEBUG_AUTH ? console.error(err) : 0, log.error)({ err: err.name, stack: err.stack?.split('\n').slice(0, 6).join('\n') }, 'authorization server error'));

  async function fhirUserOf(sub: string): Promise<string | undefined> {
    if (sub.startsWith('patient:')) {
      const a = await accounts.get(sub.slice('patient:'.length));
      return a ? `Patient/${a.patientId}` : undefined;
    }
    if (sub.startsWith('practitioner:')) return `Practitioner/${sub.slice('practitioner:'.length)}`;
    return undefined;
  }

  // ---- the resource server's check of a bearer token ----
  const VERIFIED_CACHE = 10000;
  const verified = new Map<string, Record<string, unknown>>();
  async function verify(authorization: string | undefined): Promise<Access> {
    if (!authorization) throw unauthorized(fhirBase, 'This request needs an access token (Authorization: Bearer ...)', 'invalid_request');
    const m = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)$/i.exec(authorization.trim());
    if (!m) throw unauthorized(fhirBase, 'The Authorization header must be "Bearer <access token>"', 'invalid_request');
    let claims: Record<string, unknown>;
    const known = verified.get(m[1]);
    if (known && (known.exp as number) * 1000 > Date.now()) claims = known;
    else {
      try {
        ({ payload: claims } = await jwtVerify(m[1], localKeys, { issuer, audience: fhirBase, algorithms: SIGNING_ALGS, requiredClaims: ['exp', 'iat', 'jti', 'client_id'], clockTolerance: 5 }));
      } catch (e) {
        const code = (e as { code?: string }).code;
        throw unauthorized(fhirBase, code === 'ERR_JWT_EXPIRED' ? 'The access token has expired' : 'The access token is not valid for this server');
      }
      // A signature checked once need not be checked again until the token expires; whether its
      // client and grant still stand is checked below on every request.
      if (verified.size >= VERIFIED_CACHE) verified.delete(verified.keys().next().value!);
      verified.set(m[1], claims);
    }
    if (typeof claims.client_id !== 'string') throw unauthorized(fhirBase, 'The access token names no client');
    const client = await clients.get(claims.client_id);
    if (!client || client.status !== 'referenced') throw unauthorized(fhirBase, 'The client of this access token is suspended or unknown');
    // tokens of a revoked grant (code reuse, refresh token revoked or reused) stop at once
    if (typeof claims.gid === 'string' && !(await provider.Grant.find(claims.gid))) throw unauthorized(fhirBase, 'The access token has been revoked');
    return accessFromToken(claims as never);
  }

  function smartConfiguration(): Record<string, unknown> {
    return {
      issuer,
      jwks_uri: endpoints.jwks,
      authorization_endpoint: endpoints.authorize,
      token_endpoint: endpoints.token,
      introspection_endpoint: endpoints.introspect,
      revocation_endpoint: endpoints.revoke,
      registration_endpoint: endpoints.register,
      management_endpoint: endpoints.manage,
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'none'],
      token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
      id_token_signing_alg_values_supported: SIGNING_ALGS,
      scopes_supported: ['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access', 'online_access', 'patient/*.cruds', 'patient/*.rs', 'patient/*.read', 'user/*.cruds', 'user/*.rs', 'user/*.read', 'user/*.write', 'system/*.cruds', 'system/*.rs', 'system/*.read'],
      capabilities: [
        'launch-standalone',
        'launch-ehr',
        'client-public',
        'client-confidential-symmetric',
        'client-confidential-asymmetric',
        'context-standalone-patient',
        'context-ehr-patient',
        'permission-patient',
        'permission-user',
        'permission-offline',
        'permission-online',
        'permission-v1',
        'permission-v2',
        'sso-openid-connect',
      ],
    };
  }

  // ---- the interaction pages: login, one-time code, consent ----
  const csrfFor = (uid: string) => createHmac('sha256', secrets.cookieKeys[0]).update(`csrf:${uid}`).digest('base64url');
  const csrfOk = (uid: string, token: unknown) => {
    if (typeof token !== 'string') return false;
    const a = Buffer.from(token);
    const b = Buffer.from(csrfFor(uid));
    return a.length === b.length && timingSafeEqual(a, b);
  };
  const otpKey = (uid: string) => `auth:otp:${uid}`;
  // a browser where an account signed in: a cookie whose name only this server can derive from the login
  const deviceCookie = (login: string) => `esf_device_${createHmac('sha256', secrets.cookieKeys[0]).update(`device:${login.toLowerCase()}`).digest('base64url').slice(0, 22)}`;
  const knownDevice = (req: Request, login: string) => (req.get('cookie') ?? '').split(';').some((c) => c.trim().startsWith(`${deviceCookie(login)}=`));
  const rememberDevice = (req: Request, res: Response, login: string) =>
    res.append('Set-Cookie', `${deviceCookie(login)}=1; Max-Age=${DEVICE_COOKIE_DAYS * 86400}; Path=${authPath}; HttpOnly; SameSite=Lax${req.secure ? '; Secure' : ''}`);
  const waitText = (ms: number) => (ms < 60_000 ? `${Math.ceil(ms / 1000)} seconde(s)` : `${Math.ceil(ms / 60_000)} minute(s)`);
  const otpTries = new Attempts(store, 'auth:otp-try:', OTP_MAX_ATTEMPTS, OTP_TTL_MS);
  const otpHash = (uid: string, code: string) => createHash('sha256').update(`${secrets.cookieKeys[0]}:${uid}:${code}`).digest('base64url');
  /** Tells an account's owner, at most once an hour, that wrong passwords are being tried on it. */
  async function warnOwner(login: string, failures: number): Promise<void> {
    const account = await accounts.get(login);
    if (!account || !(await store.claimState(`auth:login-notice:${createHash('sha256').update(login.toLowerCase()).digest('base64url')}`, 1, { expiresAt: Date.now() + 60 * 60 * 1000 }))) return;
    await sender.send({ channel: account.channel, to: account.to, ...failedSignInsMessage({ failures }) });
  }
  const mask = (to: string) => (to.includes('@') ? to.replace(/^(.).*(@.*)$/, '$1•••$2') : to.replace(/.(?=.{2})/g, '•'));
  const html = (res: Response, status: number, body: string) => {
    res.status(status).set({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'" });
    res.send(body);
  };
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '20kb' });
  const pro = config.proOidc ? proLogin(config, secrets, issuer) : undefined;

  const details = async (req: Request, res: Response) => provider.interactionDetails(req, res);
  const clientName = async (clientId: string) => (await clients.get(clientId))?.name ?? clientId;
  const interactionPath = (uid: string) => `${authPath}/interaction/${uid}`;
  const backTo = (uid: string, clientName: string, reason?: Back['reason']): Back => ({ action: `${interactionPath(uid)}/abort`, csrf: csrfFor(uid), clientName, reason });
  const loginHtml = (uid: string, clientName: string, o: { error?: string; login?: string } = {}) =>
    loginPage({ action: `${interactionPath(uid)}/login`, csrf: csrfFor(uid), clientName, proLoginUrl: pro ? `${interactionPath(uid)}/pro` : undefined, back: backTo(uid, clientName), ...o });
  const otpHtml = (uid: string, clientName: string, account: { channel: 'email' | 'sms'; to: string } | undefined, error?: string) =>
    otpPage({ action: `${interactionPath(uid)}/otp`, csrf: csrfFor(uid), channel: account?.channel ?? 'email', masked: mask(account?.to ?? ''), error, back: backTo(uid, clientName) });

  router.get('/interaction/:uid', async (req, res, next) => {
    try {
      const d = await details(req, res);
      const uid = d.uid;
      const name = await clientName(String(d.params.client_id));
      if (d.prompt.name === 'login') {
        return html(res, 200, loginHtml(uid, name));
      }
      return html(res, 200, await consentHtml(d, name));
    } catch (e) {
      next(e);
    }
  });

  /** "Hélène Lefèvre (Patient/123)" from the stored resource's first name, or the reference alone. */
  async function displayName(ref: string): Promise<string> {
    const m = /^(Patient|Practitioner|RelatedPerson)\/([A-Za-z0-9.-]{1,64})$/.exec(ref);
    if (!m) return ref;
    const v = await store.read(m[1], m[2]);
    if (!v?.json || v.deleted) return ref;
    const name = ((JSON.parse(v.json) as { name?: { given?: string[]; family?: string; text?: string }[] }).name ?? [])[0];
    const text = name?.text ?? [...(name?.given ?? []), name?.family].filter(Boolean).join(' ');
    return text ? `${text} (${ref})` : ref;
  }

  async function consentHtml(d: Awaited<ReturnType<Provider['interactionDetails']>>, name: string): Promise<string> {
    const details = d.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
    const oidc = details.missingOIDCScope ?? [];
    const resource = Object.values(details.missingResourceScopes ?? {}).flat();
    const sub = d.session?.accountId ?? '';
    const who = await displayName((await fhirUserOf(sub)) ?? sub);
    const scopes = [...oidc, ...resource].map((value) => ({ value, label: describeScope(value), required: value === 'openid' || value === 'launch' || value === 'launch/patient' }));
    return consentPage({ action: `${interactionPath(d.uid)}/consent`, csrf: csrfFor(d.uid), clientName: name, who, scopes });
  }

  /**
   * A form of the interaction pages: the interaction, at the prompt the form belongs to (any for
   * undefined), with the page's CSRF token; anything else is refused with a 403 page.
   */
  const interactionForm =
    (prompt: 'login' | 'consent' | undefined, handle: (d: Awaited<ReturnType<typeof details>>, req: Request, res: Response) => Promise<unknown>) =>
    async (req: Request, res: Response, next: NextFunction) => {
      try {
        const d = await details(req, res);
        if ((prompt && d.prompt.name !== prompt) || !csrfOk(d.uid, req.body?.csrf)) {
          return html(res, 403, errorPage('Requête refusée', `Le formulaire a expiré ou ne vient pas de cette page. Recommencez ${prompt === 'login' ? 'la connexion ' : ''}depuis l’application.`));
        }
        await handle(d, req, res);
      } catch (e) {
        next(e);
      }
    };

  router.post('/interaction/:uid/login', form, interactionForm('login', async (d, req, res) => {
    const login = String(req.body.login ?? '').trim();
    const { account, retryAfterMs, failures } = await accounts.authenticate(login, String(req.body.password ?? ''), { address: req.ip ?? 'unknown', knownDevice: knownDevice(req, login) });
    const name = await clientName(String(d.params.client_id));
    if (!account) {
      if (failures !== undefined && failures >= FREE_TRIES_PER_ADDRESS) await warnOwner(login, failures);
      const error = retryAfterMs !== undefined ? `Trop de tentatives : réessayez dans ${waitText(retryAfterMs)}.` : 'Identifiant ou mot de passe incorrect.';
      if (retryAfterMs !== undefined) res.set('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
      return html(res, retryAfterMs !== undefined ? 429 : 401, loginHtml(d.uid, name, { error, login }));
    }
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const expiresAt = Date.now() + OTP_TTL_MS;
    await store.setState(otpKey(d.uid), { login: account.login, hash: otpHash(d.uid, code), expiresAt }, { expiresAt });
    await sender.send({ channel: account.channel, to: account.to, ...oneTimeCodeMessage({ code, validMinutes: OTP_TTL_MS / 60_000 }) });
    return html(res, 200, otpHtml(d.uid, name, account));
  }));

  router.post('/interaction/:uid/otp', form, interactionForm('login', async (d, req, res) => {
    const pending = await store.getState<{ login: string; hash: string; expiresAt: number }>(otpKey(d.uid));
    const name = await clientName(String(d.params.client_id));
    const restart = (error: string) => html(res, 401, loginHtml(d.uid, name, { error }));
    if (!pending || pending.expiresAt <= Date.now()) {
      await store.setState(otpKey(d.uid), null);
      return restart('Le code a expiré. Connectez-vous à nouveau pour recevoir un nouveau code.');
    }
    // the tries at this code (by its digest: a new code gets its own), counted even when sent in parallel
    const { tries, allowed } = await otpTries.take(pending.hash);
    const code = String(req.body.code ?? '').trim();
    const right = allowed && /^\d{6}$/.test(code) && timingSafeEqual(Buffer.from(otpHash(d.uid, code)), Buffer.from(pending.hash));
    if (!right) {
      if (tries >= OTP_MAX_ATTEMPTS) {
        await store.setState(otpKey(d.uid), null);
        return restart('Trop de codes incorrects. Connectez-vous à nouveau pour recevoir un nouveau code.');
      }
      const account = await accounts.get(pending.login);
      return html(res, 401, otpHtml(d.uid, name, account, `Code incorrect. Il vous reste ${OTP_MAX_ATTEMPTS - tries} essai(s).`));
    }
    await store.setState(otpKey(d.uid), null); // usable once
    await otpTries.clear(pending.hash);
    rememberDevice(req, res, pending.login);
    await provider.interactionFinished(req, res, native({ login: { accountId: `patient:${pending.login}` } }), { mergeWithLastSubmission: false });
  }));

  // whoever gives up (cancels a sign-in, is refused upstream or unknown here) goes back to the app,
  // which is told so (RFC 6749 §4.1.2.1: access_denied), so that it never waits for a code
  router.post('/interaction/:uid/abort', form, interactionForm(undefined, async (d, req, res) => {
    await store.setState(otpKey(d.uid), null);
    const reason = ABORT_REASONS[String(req.body.reason)] ?? ABORT_REASONS.cancelled;
    await provider.interactionFinished(req, res, native({ error: 'access_denied', error_description: reason }), { mergeWithLastSubmission: false });
  }));

  router.post('/interaction/:uid/consent', form, interactionForm('consent', async (d, req, res) => {
    if (req.body.decision !== 'allow') {
      return provider.interactionFinished(req, res, native({ error: 'access_denied', error_description: 'The user refused the access' }), { mergeWithLastSubmission: false });
    }
    const accountId = d.session!.accountId;
    const chosen = new Set<string>(([] as string[]).concat(req.body.scope ?? []));
    const detailsOf = d.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    const grant = d.grantId ? (await provider.Grant.find(d.grantId))! : new provider.Grant(native({ accountId, clientId: String(d.params.client_id) }));
    const oidc = detailsOf.missingOIDCScope ?? [];
    grant.addOIDCScope(oidc.filter((s) => chosen.has(s) || s === 'openid'));
    const refusedOidc = oidc.filter((s) => !chosen.has(s) && s !== 'openid');
    if (refusedOidc.length) grant.rejectOIDCScope(refusedOidc);
    if (detailsOf.missingOIDCClaims) grant.addOIDCClaims(detailsOf.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(detailsOf.missingResourceScopes ?? {})) {
      const ok = scopes.filter((s) => chosen.has(s));
      if (ok.length) grant.addResourceScope(resource, ok);
      const refused = scopes.filter((s) => !chosen.has(s));
      if (refused.length) grant.rejectResourceScope(resource, refused);
    }
    const grantId = await grant.save();
    // the launch context of the tokens of this grant
    const context: LaunchContext = { fhirUser: await fhirUserOf(accountId) };
    if (accountId.startsWith('patient:')) context.patient = context.fhirUser?.slice('Patient/'.length);
    const launchId = (d.params as Record<string, unknown>).launch;
    // the `launch` scope asks for the context of an EHR launch: without a launch there is none to give
    if (typeof launchId !== 'string' && String(d.params.scope ?? '').split(' ').includes('launch')) {
      return provider.interactionFinished(req, res, native({ error: 'invalid_scope', error_description: LAUNCH_SCOPE_WITHOUT_LAUNCH }), { mergeWithLastSubmission: false });
    }
    if (typeof launchId === 'string') {
      const launch = await store.getState<Launch | null>(`smart:launch:${launchId}`);
      const unknownLaunch = () => provider.interactionFinished(req, res, native({ error: 'invalid_request', error_description: 'The launch is unknown or has expired' }), { mergeWithLastSubmission: false });
      if (!launch || launch.expiresAt < Date.now()) return unknownLaunch();
      // a launch issued from a professional's session is theirs; a patient's own context is never replaced
      const notTheirs = (launch.user && launch.user !== context.fhirUser) || (context.patient !== undefined && context.patient !== launch.patient);
      if (notTheirs) return provider.interactionFinished(req, res, native({ error: 'access_denied', error_description: 'This launch was not issued for the signed-in user' }), { mergeWithLastSubmission: false });
      // a launch serves once, also when two sign-ins use it at the same time
      if (!(await store.claimState(`smart:launch-use:${launchId}`, 1, { expiresAt: launch.expiresAt }))) return unknownLaunch();
      context.patient = launch.patient;
      await store.setState(`smart:launch:${launchId}`, null);
    }
    // the context lives and goes with its grant (revoked with it)
    await store.setState(`smart:context:${grantId}`, context, { group: grantId, expiresAt: ((await provider.Grant.find(grantId))?.exp ?? 0) * 1000 });
    await provider.interactionFinished(req, res, native({ consent: { grantId } }), { mergeWithLastSubmission: true });
  }));

  if (pro) {
    router.use(pro.middleware);
    router.get('/interaction/:uid/pro', async (req, res, next) => {
      try {
        const d = await details(req, res);
        if (d.prompt.name !== 'login') return res.redirect(`${authPath}/interaction/${d.uid}`);
        if (!req.oidc?.isAuthenticated()) return res.oidc.login({ returnTo: `${authPath}/interaction/${d.uid}/pro` });
        const rpps = await pro.rppsOf(req);
        pro.endSession(req);
        const practitioner = rpps ? await findPractitioner(rpps) : undefined;
        if (!practitioner) return html(res, 403, errorPage('Accès refusé', 'Votre identité de professionnel de santé (RPPS) ne correspond à aucun professionnel connu de ce serveur.', backTo(d.uid, await clientName(String(d.params.client_id)), 'pro-unknown')));
        await provider.interactionFinished(req, res, native({ login: { accountId: `practitioner:${practitioner}` } }), { mergeWithLastSubmission: false });
      } catch (e) {
        next(e);
      }
    });
  }

  /** The Practitioner whose FR Core RPPS identifier is `rpps` (the index's own token keys, as `identifier=system|value` searches them). */
  async function findPractitioner(rpps: string): Promise<string | undefined> {
    const keys = RPPS_SYSTEMS.map((s) => tokenSystemCodeKey(s, rpps));
    const page = await store.search({ scopes: [{ type: 'Practitioner', conditions: [{ kind: 'key', param: 'identifier', keys }] }], sort: [], count: 2, total: 'none' });
    return page.items.length === 1 ? page.items[0].id : undefined;
  }

  // ---- EHR launch: a professional's software issues a launch for a patient ----
  router.post('/launch', express.json({ limit: '10kb' }), async (req, res) => {
    try {
      const access = await verify(req.get('authorization'));
      const patient = (req.body as { patient?: unknown })?.patient;
      if (typeof patient !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(patient)) return res.status(400).json({ error: 'invalid_request', error_description: 'patient: the id of a Patient' });
      if (!access.scopes.some((s) => s.context === 'user' || s.context === 'system')) throw forbidden('An EHR launch is issued by a professional (user/ scopes) or a system');
      const current = await store.read('Patient', patient);
      if (!current || current.deleted) return res.status(404).json({ error: 'invalid_request', error_description: `No Patient/${patient}` });
      const id = randomBytes(24).toString('base64url');
      const expiresAt = Date.now() + LAUNCH_TTL_S * 1000;
      await store.setState(`smart:launch:${id}`, { patient, issuedBy: access.clientId, ...(access.fhirUser ? { user: access.fhirUser } : {}), expiresAt } satisfies Launch, { expiresAt });
      res.status(201).json({ launch: id, expires_in: LAUNCH_TTL_S });
    } catch (e) {
      if (e instanceof FhirError) return res.status(e.status).set(e.headers).json({ error: e.status === 401 ? 'invalid_token' : 'insufficient_scope', error_description: e.message });
      throw e;
    }
  });

  // ---- admin API: the client registry, for a system/*.cruds token (the administrator's) ----
  const admin = async (req: Request, res: Response, next: NextFunction) => {
    try {
      const access = await verify(req.get('authorization'));
      if (!access.scopes.some((s) => s.context === 'system' && s.type === '*' && s.permissions.size === 5)) throw forbidden('The client registry is managed with a system/*.cruds token');
      next();
    } catch (e) {
      if (e instanceof FhirError) return res.status(e.status).set(e.headers).json({ error: e.status === 401 ? 'invalid_token' : 'insufficient_scope', error_description: e.message });
      next(e);
    }
  };
  const shown = (c: RegisteredClient | undefined) => {
    if (!c) return c;
    const { secretDigest, ...rest } = c;
    void secretDigest;
    return rest;
  };
  router.get('/admin/clients', admin, async (_req, res) => res.json((await clients.list()).map(shown)));
  router.get('/admin/clients/:id', admin, async (req, res) => {
    const c = await clients.get(String(req.params.id));
    return c ? res.json(shown(c)) : res.status(404).json({ error: 'not_found' });
  });
  router.post('/admin/clients', admin, express.json({ limit: '100kb' }), async (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    try {
      const c = await clients.add({
        clientId: String(b.client_id ?? ''),
        name: String(b.client_name ?? b.client_id ?? ''),
        kind: (b.kind as never) ?? 'patient-app',
        redirectUris: (b.redirect_uris as string[]) ?? [],
        scope: String(b.scope ?? ''),
        authMethod: (b.token_endpoint_auth_method as never) ?? 'none',
        jwks: b.jwks as never,
        jwksUri: b.jwks_uri as string | undefined,
      });
      const { secret, ...client } = c;
      res.status(201).json({ ...shown(client), ...(secret ? { client_secret: secret } : {}) });
    } catch (e) {
      res.status(400).json({ error: 'invalid_client_metadata', error_description: (e as Error).message });
    }
  });
  router.post('/admin/clients/:id/:action', admin, async (req, res) => {
    const action = req.params.action;
    if (action !== 'suspend' && action !== 'reference') return res.status(404).json({ error: 'not_found' });
    try {
      res.json(shown(await clients.setStatus(String(req.params.id), action === 'suspend' ? 'suspended' : 'referenced')));
    } catch (e) {
      res.status(404).json({ error: 'not_found', error_description: (e as Error).message });
    }
  });

  // RFC 7662 for the JWT access tokens (oidc-provider introspects only its opaque tokens, the
  // refresh tokens, which go on to it): the caller authenticates with a bearer token of its own
  router.post('/introspect', form, async (req, res, next) => {
    const t = typeof req.body?.token === 'string' ? req.body.token : '';
    if (t.split('.').length !== 3) return next();
    try {
      await verify(req.get('authorization'));
    } catch (e) {
      if (!(e instanceof FhirError) || e.status !== 401) return next(e);
      return res.status(401).set('WWW-Authenticate', 'Bearer').set('Cache-Control', 'no-store').json({ error: 'invalid_client', error_description: 'Introspection of access tokens needs an access token in the Authorization header' });
    }
    res.set('Cache-Control', 'no-store');
    try {
      const a = await verify(`Bearer ${t}`);
      const c = decodeJwt(t);
      return res.json({ active: true, token_type: 'Bearer', scope: a.scope, client_id: a.clientId, sub: c.sub, iss: c.iss, aud: c.aud, exp: c.exp, iat: c.iat, jti: c.jti, ...(a.patient ? { patient: a.patient } : {}), ...(a.fhirUser ? { fhirUser: a.fhirUser } : {}) });
    } catch {
      return res.json({ active: false });
    }
  });

  // the protocol endpoints themselves
  const callback = provider.callback();
  router.use((req, res, next) => {
    basicSecretDigested(req);
    Promise.resolve(callback(req, res)).catch(next);
  });
  router.use((err: Error, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const name = (err as { name?: string }).name;
    // the client's own mistakes: a body that does not parse or is too large, an address that does not decode
    const status = err instanceof URIError ? 400 : (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500 && !(pro && req.path === '/pro/callback')) {
      const message = status === 413 ? 'The request body is too large' : err instanceof URIError ? 'The address does not decode' : 'The request body does not parse';
      if (req.path.startsWith('/admin/') || req.path === '/launch') return res.status(status).json({ error: 'invalid_request', error_description: message });
      return html(res, status, errorPage('Requête invalide', status === 413 ? 'La requête est trop volumineuse.' : 'La requête est mal formée. Recommencez depuis l’application.'));
    }
    if (pro && req.path === '/pro/callback') {
      // the upstream refused or the answer did not check out (state, nonce, ID token): not a failure of this server
      const code = (err as { error?: unknown }).error;
      log.warn({ err: typeof code === 'string' ? code : name }, 'professional sign-in through the upstream provider failed');
      // the sign-in it came from: express-openid-connect read it from its own signed cookie
      const uid = new RegExp(`^${authPath}/interaction/([A-Za-z0-9_-]+)/pro$`).exec((req as { openidState?: { returnTo?: string } }).openidState?.returnTo ?? '')?.[1];
      return void (async () => {
        const interaction = uid ? await provider.Interaction.find(uid) : undefined;
        const back = interaction ? backTo(uid!, await clientName(String(interaction.params.client_id)), 'pro-refused') : undefined;
        html(res, 401, errorPage('Connexion impossible', `La connexion avec Pro Santé Connect n’a pas abouti.${back ? '' : ' Recommencez depuis votre logiciel.'}`, back));
      })().catch(next);
    }
    if (name === 'SessionNotFound' || name === 'InvalidRequest') return html(res, 400, errorPage('Session expirée', 'Cette page de connexion a expiré. Recommencez depuis l’application.'));
    log.error({ err: name, stack: err.stack?.split('\n').slice(0, 6).join('\n') }, 'authorization page failed');
    return html(res, 500, errorPage('Erreur', 'Une erreur est survenue. Réessayez plus tard.'));
  });

  // the origins of browser apps, recomputed at most every 10 s (registrations are rare, requests are not)
  let origins: { at: number; set: Promise<Set<string>> } | undefined;
  const allowsOrigin = async (origin: string) => {
    if (!origins || Date.now() - origins.at > 10_000) {
      const set = clients.list().then((all) => new Set(all.filter((c) => c.status !== 'suspended').flatMap((c) => c.redirectUris.map(originOf)).filter((o): o is string => o !== undefined)));
      origins = { at: Date.now(), set };
      set.catch(() => (origins = undefined));
    }
    return (await origins.set).has(origin);
  };

  return { issuer, trustProxy: config.trustProxy, fhirBase, provider, clients, accounts, router, verify, smartConfiguration, allowsOrigin, endpoints, publicJwks };
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

/** FR Core's RPPS identifier system, and the national one (urn:oid:1.2.250.1.71.4.2.1 is the ADELI/RPPS OID). */
/** The origin (scheme, host, port) of a URL; undefined for what does not parse. */
function originOf(url: string): string | undefined {
  try {
    const o = new URL(url).origin;
    return o === 'null' ? undefined : o;
  } catch {
    return undefined;
  }
}

export const RPPS_SYSTEMS = ['https://rpps.esante.gouv.fr', 'urn:oid:1.2.250.1.71.4.2.1'];
