import { decodeJwt } from 'jose';
import type * as OidcProviderModule from 'oidc-provider';
import type { Config } from '../config';
import type { Logger } from '../log';
import { grantable, parseScope } from '../policy/scopes';
import type { ResourceStore } from '../store/types';
import { adapterFor } from './adapter';
import { fhirUserOf, launchContextOf } from './context';
import { originOf } from './cors';
import { renderProviderError } from './errors';
import { loadEsm, native } from './esm';
import { CLIENT_ASSERTION_ALGS, SIGNING_ALGS, type Secrets } from './keys';
import { LAUNCH_SCOPE_WITHOUT_LAUNCH, type Launches } from './launch';
import { AUTH_METHODS, type AccountRegistry, type ClientRegistry } from './registry';

/**
 * The OpenID provider (oidc-provider) as this server configures it: its storage, the registered
 * clients, the SMART parameters (aud, launch), PKCE, client authentication, resource indicators
 * (the FHIR base is the one resource), token claims, lifetimes, and the SMART shape of token
 * responses.
 */
type ProviderModule = typeof OidcProviderModule;
type Errors = ProviderModule['errors'];
export type Provider = OidcProviderModule.default;
export type KoaContext = OidcProviderModule.KoaContextWithOIDC;

export interface ProviderOptions {
  config: Config;
  store: ResourceStore;
  log: Logger;
  issuer: string;
  fhirBase: string;
  authPath: string;
  secrets: Secrets;
  clients: ClientRegistry;
  accounts: AccountRegistry;
  launches: Launches;
}

const ASSERTION_MAX_LIFETIME_S = 300;

export function createProvider(o: ProviderOptions): Provider {
  const { config, store, clients, accounts } = o;
  const { default: ProviderClass, errors } = loadEsm<ProviderModule>('oidc-provider');
  const provider: Provider = new ProviderClass(o.issuer, native<Record<string, unknown>>({
    adapter: ((Adapter) => (name: string) => new Adapter(name))(adapterFor(store, clients, errors.InvalidGrant)) as never,
    clients: [],
    // JWKS URLs of clients: fetched with oidc-provider's SSRF protection (its dispatcher), except
    // for the hosts the operator trusts with a private address
    fetch: (url: URL | string, options: RequestInit & { dispatcher?: unknown }) => {
      if (config.jwksPrivateHosts.includes(new URL(url).hostname.toLowerCase())) delete options.dispatcher;
      return fetch(url, options);
    },
    jwks: { keys: o.secrets.signingKeys as never },
    cookies: { keys: o.secrets.cookieKeys },
    async findAccount(_ctx: unknown, sub: string) {
      return native({ accountId: sub, claims: async () => native({ sub, fhirUser: await fhirUserOf(accounts, sub) }) });
    },
    claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
    scopes: ['openid', 'offline_access', 'online_access', 'fhirUser', 'launch', 'launch/patient'],
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    clientAuthMethods: [...AUTH_METHODS],
    enabledJWA: { clientAuthSigningAlgValues: CLIENT_ASSERTION_ALGS as never, idTokenSigningAlgValues: SIGNING_ALGS as never },
    clientDefaults: { id_token_signed_response_alg: 'RS384', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'private_key_jwt' },
    allowOmittingSingleRegisteredRedirectUri: false,
    // browser apps (public clients) call the token, revocation and userinfo endpoints from the origin of their redirect URIs
    clientBasedCORS(_ctx: KoaContext, origin: string, client: { clientAuthMethod: string; redirectUris: string[] }) {
      return origin !== 'null' && client.clientAuthMethod === 'none' && client.redirectUris.some((uri) => originOf(uri) === origin);
    },
    loadExistingGrant,
    extraParams: smartParams(o, errors),
    features: features(o, errors),
    assertJwtClientAuthClaimsAndHeader: assertionChecks(errors),
    ...tokens(o),
    interactions: { url: (_ctx: KoaContext, interaction: { uid: string }) => `${o.authPath}/interaction/${interaction.uid}` },
    routes: { authorization: '/authorize', token: '/token', introspection: '/introspect', revocation: '/revoke', jwks: '/jwks' },
    renderError: renderProviderError,
  }) as never);
  if (config.trustProxy) provider.proxy = true;
  provider.use(async (ctx: KoaContext, next: () => Promise<void>) => {
    offlineAccessAsksConsent(ctx);
    await next();
    smartTokenResponse(ctx);
  });
  provider.on('server_error', (_ctx: unknown, err: Error) => {
    if (process.env.DEBUG_AUTH) console.error(err);
    o.log.error({ err: err.name, stack: err.stack?.split('\n').slice(0, 6).join('\n') }, 'authorization server error');
  });
  return provider;
}

/**
 * Each EHR launch gets a grant of its own: its launch context (the patient) is the grant's, so a
 * second launch of the same app in the same session, for another patient, must not reuse the
 * first one's grant (and context); it goes through consent, where its context is recorded.
 */
async function loadExistingGrant(ctx: KoaContext) {
  const grantId = ctx.oidc.result?.consent?.grantId || ((ctx.oidc.params as Record<string, unknown>).launch ? undefined : ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId));
  return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
}

/** The SMART parameters of an authorization request. */
function smartParams(o: ProviderOptions, errors: Errors) {
  return {
    // `aud` must name this server's FHIR base, so a token is never requested for another server
    aud(ctx: KoaContext, value: string | undefined) {
      if (ctx.oidc.route !== 'authorization' && ctx.oidc.route !== 'resume') return;
      if (value === undefined) throw new errors.InvalidRequest('aud is required: the FHIR base URL of this server');
      if (value.replace(/\/+$/, '') !== o.fhirBase) throw new errors.InvalidRequest(`aud must be this server's FHIR base URL, ${o.fhirBase}`);
    },
    // an EHR launch is checked before anyone signs in (again at consent, where it is used)
    async launch(ctx: KoaContext, value: string | undefined) {
      if (ctx.oidc.route !== 'authorization') return;
      if (value === undefined) {
        if (String((ctx.oidc.params as Record<string, unknown>).scope ?? '').split(' ').includes('launch')) throw new errors.InvalidScope(LAUNCH_SCOPE_WITHOUT_LAUNCH, 'launch');
        return;
      }
      if (!(await o.launches.exists(value))) throw new errors.InvalidRequest('The launch is unknown or has expired');
    },
  } as never;
}

function features(o: ProviderOptions, errors: Errors) {
  return {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: false },
    rpInitiatedLogout: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => o.fhirBase,
      useGrantedResource: () => true,
      async getResourceServerInfo(ctx: KoaContext, indicator: string, client: OidcProviderModule.Client) {
        if (indicator.replace(/\/+$/, '') !== o.fhirBase) throw new errors.InvalidTarget(`The only resource is ${o.fhirBase}`);
        const registered = (await o.clients.get(client.clientId))?.scope ?? '';
        const { granted, refused } = grantable((await requestedScopes(ctx)) ?? '', registered);
        const resourceRefused = refused.filter((s) => parseScope(s));
        // a backend asks for exactly what it needs: beyond its registration is an error, not a silent cut
        if ((ctx.oidc.params as Record<string, string>).grant_type === 'client_credentials' && resourceRefused.length) {
          throw new errors.InvalidScope(`requested scope is not allowed for this client: ${resourceRefused.join(' ')}`, resourceRefused[0]);
        }
        const scope = granted.filter((s) => parseScope(s)).join(' ');
        return native({ scope, audience: o.fhirBase, accessTokenTTL: o.config.accessTokenTtl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS384' } } });
      },
    },
  } as never;
}

/** The SMART scopes of the request at hand, as far as the client may receive them. */
async function requestedScopes(ctx: KoaContext): Promise<string | undefined> {
  const params = ctx.oidc.params as Record<string, string | undefined>;
  const { provider } = ctx.oidc;
  if (ctx.oidc.route === 'token') {
    if (params.grant_type === 'authorization_code' && params.code) return (await provider.AuthorizationCode.find(params.code, { ignoreExpiration: true }))?.scope ?? undefined;
    if (params.grant_type === 'refresh_token' && params.refresh_token) return params.scope ?? (await provider.RefreshToken.find(params.refresh_token, { ignoreExpiration: true }))?.scope ?? undefined;
  }
  return params.scope;
}

/** SMART Backend Services / RFC 7523: a short-lived assertion with a jti (replays are refused by the provider). */
function assertionChecks(errors: Errors) {
  return async (_ctx: KoaContext, claims: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number') throw new errors.InvalidClientAuth('the client assertion needs exp');
    if (claims.exp - now > ASSERTION_MAX_LIFETIME_S + 15) throw new errors.InvalidClientAuth(`the client assertion's exp must be at most ${ASSERTION_MAX_LIFETIME_S} seconds ahead`);
    if (typeof claims.jti !== 'string' || !claims.jti) throw new errors.InvalidClientAuth('the client assertion needs a jti');
  };
}

/** What tokens carry (the launch context, the grant), which ones are issued, and how long each lives. */
function tokens(o: ProviderOptions) {
  const { config } = o;
  return {
    async extraTokenClaims(_ctx: KoaContext, token: { grantId?: string; kind: string }) {
      if (!token.grantId) return undefined;
      const c = await launchContextOf(o.store, token.grantId);
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
  };
}

/**
 * OpenID Connect drops offline_access unless prompt=consent; SMART apps ask for it without prompt,
 * and this server always shows its consent page for it: make that explicit.
 */
function offlineAccessAsksConsent(ctx: KoaContext): void {
  if (ctx.method !== 'GET' || ctx.path !== '/authorize') return;
  const q = new URLSearchParams(ctx.querystring);
  if (!q.has('prompt') && !q.has('request') && (q.get('scope') ?? '').split(' ').includes('offline_access')) {
    q.set('prompt', 'consent');
    ctx.querystring = q.toString();
  }
}

/** SMART token responses name every granted scope and the launch context beside the token. */
function smartTokenResponse(ctx: KoaContext): void {
  const body = ctx.body as Record<string, unknown> | undefined;
  if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !body || typeof body.access_token !== 'string') return;
  const claims = decodeJwt(body.access_token);
  // the response's scope names the OpenID ones (openid, fhirUser, launch/patient, offline_access) too
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
