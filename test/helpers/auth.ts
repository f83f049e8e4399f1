import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import supertest from 'supertest';
import type { Express } from 'express';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import type { AppServices } from '../../src/server';
import type { RegisteredClient } from '../../src/auth/registry';

/** The host of the test base URL (http://fhir.test/fhir): token requests name it, as a real client would reach it. */
export const HOST = 'fhir.test';
export const TOKEN_URL = `http://${HOST}/auth/token`;

export interface BackendClient {
  clientId: string;
  privateKey: KeyLike;
  jwk: JWK;
  kid: string;
}

/** Registers a backend system (SMART Backend Services) with a fresh ES384 key pair. */
export async function registerBackend(svc: AppServices, scope: string, clientId = `backend-${randomUUID().slice(0, 8)}`, extra: Partial<RegisteredClient> = {}): Promise<BackendClient> {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const kid = randomUUID();
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES384', use: 'sig' };
  await svc.auth!.clients.add({ clientId, name: clientId, kind: 'backend', redirectUris: [], scope, authMethod: 'private_key_jwt', jwks: { keys: [jwk] }, ...extra });
  return { clientId, privateKey, jwk, kid };
}

/** A private_key_jwt client assertion for the token endpoint at `tokenUrl` (its audience). */
export async function clientAssertion(c: BackendClient, overrides: Record<string, unknown> = {}, tokenUrl = TOKEN_URL): Promise<string> {
  return new SignJWT({ jti: randomUUID(), ...overrides })
    .setProtectedHeader({ alg: 'ES384', kid: c.kid, typ: 'JWT' })
    .setIssuer(c.clientId)
    .setSubject(c.clientId)
    .setAudience(tokenUrl)
    .setIssuedAt()
    .setExpirationTime('4m')
    .sign(c.privateKey);
}

/**
 * client_credentials through the real token endpoint with a private_key_jwt assertion: the app's
 * (reached as http://fhir.test), or a listening server's at its own token URL.
 */
export async function backendToken(app: Express | http.Server, c: BackendClient, scope: string, tokenUrl = TOKEN_URL): Promise<string> {
  const url = new URL(tokenUrl);
  const res = await supertest(app)
    .post(url.pathname)
    .set('Host', url.host)
    .type('form')
    .send({ grant_type: 'client_credentials', scope, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await clientAssertion(c, {}, tokenUrl) });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.access_token as string;
}

const tokens = new WeakMap<object, string>();

/** Makes `request(app)` send this token with every request. */
export function useToken(app: Express, token: string): void {
  tokens.set(app, token);
}

type Agent = ReturnType<typeof supertest>;

/**
 * supertest with the app's token (see useToken) set on every request: the suites keep their
 * `request(h.app).get(...)` lines and run as an authorized client. `anonymous` sends none.
 */
export function request(app: Express): Agent {
  const agent = supertest(app);
  const token = tokens.get(app);
  if (!token) return agent;
  return new Proxy(agent, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || !['get', 'post', 'put', 'patch', 'delete', 'del', 'head', 'options'].includes(String(prop))) return v;
      return (...args: unknown[]) => (v as (...a: unknown[]) => supertest.Test).apply(target, args).set('Authorization', `Bearer ${token}`);
    },
  });
}

export const anonymous = supertest;

// eslint-disable-next-line @typescript-eslint/no-namespace
export namespace request {
  export type Response = supertest.Response;
  export type Test = supertest.Test;
}
