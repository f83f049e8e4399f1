import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import supertest from 'supertest';
import type { Express } from 'express';
import { HOST } from './auth';

export const FHIR_BASE = `http://${HOST}/fhir`;

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The last one-time code the development sender wrote for `to`. */
export function lastCode(dataDir: string, to: string): string {
  const lines = fs.readFileSync(path.join(dataDir, 'outbox', 'messages.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { to: string; text: string });
  const m = /(\d{6})/.exec(lines.filter((l) => l.to === to).pop()!.text);
  return m![1];
}

const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
const action = (html: string) => /<form method="post" action="([^"]+)"/.exec(html)![1].replace(/&amp;/g, '&');

export interface FormFlow {
  clientId: string;
  redirectUri: string;
  scope: string;
  login: string;
  password: string;
  to: string;
  dataDir: string;
  /** scopes to untick on the consent page */
  untick?: string[];
  challenge?: string | null;
  method?: string;
  aud?: string;
  launch?: string;
}

/** The path of an authorization request: code flow, `aud` this server's FHIR base, PKCE S256 unless `challenge` is null. */
export function authorizePath(o: { clientId: string; redirectUri: string; scope: string; challenge?: string | null; method?: string; state?: string; aud?: string; extra?: Record<string, string> }): string {
  const q = new URLSearchParams({ response_type: 'code', client_id: o.clientId, redirect_uri: o.redirectUri, scope: o.scope, state: o.state ?? 'st4te', aud: o.aud ?? FHIR_BASE });
  if (o.challenge !== null) {
    q.set('code_challenge', o.challenge ?? pkce().challenge);
    q.set('code_challenge_method', o.method ?? 'S256');
  }
  for (const [k, v] of Object.entries(o.extra ?? {})) q.set(k, v);
  return `/auth/authorize?${q}`;
}

/**
 * A standalone launch through the real pages, as a browser would post them (cookies kept):
 * authorize, login, one-time code, consent. Returns the redirect to the app (with code or error).
 */
export async function authorizeThroughForms(app: Express, f: FormFlow): Promise<URL> {
  const agent = supertest.agent(app);
  let res = await agent.get(authorizePath({ ...f, extra: f.launch ? { launch: f.launch } : {} })).set('Host', HOST);
  const follow = async () => {
    while (res.status === 302 || res.status === 303) {
      const loc = new URL(res.headers.location, `http://${HOST}`);
      if (!loc.pathname.startsWith('/auth/')) return loc;
      res = await agent.get(loc.pathname + loc.search).set('Host', HOST);
    }
    return undefined;
  };
  let out = await follow();
  if (out) return out;
  if (res.status !== 200) throw new Error(`authorize: ${res.status} ${res.text.slice(0, 300)}`);
  res = await agent.post(action(res.text)).set('Host', HOST).type('form').send({ csrf: field(res.text, 'csrf'), login: f.login, password: f.password });
  if (res.status !== 200) throw new Error(`login: ${res.status}`);
  res = await agent.post(action(res.text)).set('Host', HOST).type('form').send({ csrf: field(res.text, 'csrf'), code: lastCode(f.dataDir, f.to) });
  out = await follow();
  if (out) return out;
  const scopes = [...res.text.matchAll(/name="scope" value="([^"]+)"/g)].map((m) => m[1].replace(/&amp;/g, '&')).filter((s) => !(f.untick ?? []).includes(s));
  res = await agent.post(action(res.text)).set('Host', HOST).type('form').send(`csrf=${encodeURIComponent(field(res.text, 'csrf')!)}&decision=allow&${scopes.map((s) => `scope=${encodeURIComponent(s)}`).join('&')}`);
  out = await follow();
  if (!out) throw new Error(`consent: ${res.status} ${res.text.slice(0, 300)}`);
  return out;
}

export async function exchangeCode(app: Express, o: { code: string; clientId: string; redirectUri: string; verifier?: string }): Promise<supertest.Response> {
  const form: Record<string, string> = { grant_type: 'authorization_code', code: o.code, redirect_uri: o.redirectUri, client_id: o.clientId };
  if (o.verifier) form.code_verifier = o.verifier;
  return supertest(app).post('/auth/token').set('Host', HOST).type('form').send(form);
}
