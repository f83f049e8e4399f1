import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import type * as OidcProviderModule from 'oidc-provider';
import type { Express } from 'express';
import { loadEsm, native } from '../../src/auth/esm';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import type { AppServices } from '../../src/server';
import { anonymous, backendToken, HOST, registerBackend } from './auth';
import { servicesFor, type Engine } from './engines';

/**
 * A real OpenID Connect provider on loopback (oidc-provider, the library the server itself is built
 * on) standing in for Pro Santé Connect, the professionals' identity provider.
 *
 * Like Pro Santé Connect, it serves the scope `scope_all`, whose claims include `SubjectNameID`, the
 * national identifier of the professional: "8" followed by the 11-digit RPPS number. With
 * oidc-provider's default (`conformIdTokenClaims`), the claims of a scope are served by the
 * userinfo endpoint, not put in the ID token (as Pro Santé Connect serves SubjectNameID in its
 * userinfo); `claimsInIdToken` puts them in the ID token as well.
 *
 * Its login page is the smallest one that works: a form with the account's identifier (the test's
 * stand-in for the CPS card or e-CPS); signing in also grants the client what it asked.
 */
export interface UpstreamAccount {
  /** national identifier, "8" + RPPS for an RPPS number */
  SubjectNameID: string;
  family_name?: string;
  given_name?: string;
}

export interface Upstream {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** how many times each endpoint was called (discovery, authorization, token, userinfo, login) */
  calls: Record<string, number>;
  close(): Promise<void>;
}

type Provider = OidcProviderModule.default;

/** The upstream's storage, for the life of the test (oidc-provider's own one warns that it is for development). */
class MemoryAdapter {
  private static readonly data = new Map<string, { payload: Record<string, unknown>; expiresAt?: number }>();
  constructor(private readonly name: string) {}
  private k(id: string) {
    return `${this.name}:${id}`;
  }
  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
    MemoryAdapter.data.set(this.k(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    if (typeof payload.uid === 'string') MemoryAdapter.data.set(`${this.name}:uid:${payload.uid}`, { payload: { id } });
  }
  async find(id: string) {
    const v = MemoryAdapter.data.get(this.k(id));
    return v && (!v.expiresAt || v.expiresAt > Date.now()) ? native(v.payload) : undefined;
  }
  async findByUid(uid: string) {
    const ref = MemoryAdapter.data.get(`${this.name}:uid:${uid}`);
    return ref ? this.find(String(ref.payload.id)) : undefined;
  }
  async findByUserCode() {
    return undefined;
  }
  async consume(id: string) {
    const v = MemoryAdapter.data.get(this.k(id));
    if (v) v.payload = { ...v.payload, consumed: Math.floor(Date.now() / 1000) };
  }
  async destroy(id: string) {
    MemoryAdapter.data.delete(this.k(id));
  }
  async revokeByGrantId(grantId: string) {
    for (const [k, v] of MemoryAdapter.data) if (v.payload.grantId === grantId) MemoryAdapter.data.delete(k);
  }
}

export async function startUpstream(o: { redirectUris: string[]; accounts: Record<string, UpstreamAccount>; claimsInIdToken?: boolean }): Promise<Upstream> {
  const { default: ProviderClass } = loadEsm<typeof OidcProviderModule>('oidc-provider');
  const clientId = 'espace-sante-fhir';
  const clientSecret = randomBytes(24).toString('base64url');
  const calls: Record<string, number> = {};
  let provider: Provider | undefined;
  let callback: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const what = url.pathname.startsWith('/interaction/') ? 'login' : url.pathname.replace(/^\//, '') || 'root';
    calls[what] = (calls[what] ?? 0) + 1;
    if (url.pathname.startsWith('/interaction/')) return void interaction(req, res).catch((e: Error) => {
      res.statusCode = 500;
      res.end(String(e.message));
    });
    callback!(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'psc-test' };
  provider = new ProviderClass(issuer, native<Record<string, unknown>>({
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: o.redirectUris, grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    scopes: ['openid', 'scope_all'],
    claims: { openid: ['sub'], scope_all: ['SubjectNameID', 'family_name', 'given_name'] },
    conformIdTokenClaims: !o.claimsInIdToken,
    async findAccount(_ctx: unknown, sub: string) {
      const a = o.accounts[sub];
      if (!a) return undefined;
      return native({ accountId: sub, claims: async () => native({ sub, ...a }) });
    },
    features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
    adapter: (name: string) => new MemoryAdapter(name),
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 300, IdToken: 300, AuthorizationCode: 60 },
    async renderError(ctx: { type: string; body: string }, out: Record<string, string>) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html lang="fr"><title>Erreur</title><p id="error">${out.error}</p></html>`;
    },
    interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
  }) as never);
  // a failure of the stand-in itself must be visible, not only as a page
  provider.on('server_error', (_ctx: unknown, e: Error) => console.error('upstream OpenID provider error', e));
  callback = provider.callback() as never;

  const p = provider;
  async function interaction(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const d = await p.interactionDetails(req, res);
    if (req.method === 'GET') {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><html lang="fr"><title>Pro Santé Connect (test)</title><form method="post" action="/interaction/${d.uid}"><label for="login">Carte CPS</label><input id="login" name="login"><button>Se connecter</button></form></html>`);
      return;
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    const login = new URLSearchParams(body).get('login') ?? '';
    if (!o.accounts[login]) {
      await p.interactionFinished(req, res, native({ error: 'access_denied', error_description: 'unknown card' }), { mergeWithLastSubmission: false });
      return;
    }
    const grant = new p.Grant(native({ accountId: login, clientId: String(d.params.client_id) }));
    grant.addOIDCScope(String(d.params.scope));
    const grantId = await grant.save();
    await p.interactionFinished(req, res, native({ login: { accountId: login }, consent: { grantId } }), { mergeWithLastSubmission: false });
  }

  return {
    issuer,
    clientId,
    clientSecret,
    calls,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** This server with professionals signing in through an upstream provider on loopback, an administrator token, and a helper that creates resources with it. */
export interface ProServer {
  upstream: Upstream;
  services: AppServices;
  app: Express;
  /** creates a resource as the administrator; its id */
  create(resource: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts the upstream (which knows `accounts`) first: the server's address is fixed
 * (http://fhir.test), so the upstream registers its callback before the server exists.
 */
export async function startProServer(engine: Engine, dataDir: string, accounts: Record<string, UpstreamAccount>): Promise<ProServer> {
  const upstream = await startUpstream({ redirectUris: [`http://${HOST}/auth/pro/callback`], accounts });
  const services = await servicesFor(engine, {
    dataDir,
    proOidc: { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret, scope: 'openid scope_all', rppsClaim: 'SubjectNameID' },
  });
  const app = createApp(services, createLogger('silent'));
  const admin = await backendToken(app, await registerBackend(services, 'system/*.cruds'), 'system/*.cruds');
  const create = async (r: Record<string, unknown>) => {
    const res = await anonymous(app).post(`/fhir/${r.resourceType}`).set('Authorization', `Bearer ${admin}`).set('Content-Type', 'application/fhir+json').send(JSON.stringify(r));
    if (res.status !== 201) throw new Error(`creating a ${String(r.resourceType)}: ${res.status} ${res.text.slice(0, 300)}`);
    return res.body.id as string;
  };
  const close = async () => {
    await services.store.close();
    await engine.cleanup();
    await upstream.close();
  };
  return { upstream, services, app, create, close };
}
