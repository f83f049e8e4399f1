import type { ResourceStore } from '../store/types';
import type { ClientRegistry, RegisteredClient } from './registry';
import { nativeJson } from './esm';

/**
 * oidc-provider's storage (authorization codes, refresh tokens, grants, sessions, interactions,
 * replayed client-assertion `jti`s) on the store's server-owned state, so that it survives a
 * restart and works on both engines. Clients come from the client registry; a suspended client is
 * unknown to the provider.
 */
interface Stored {
  payload: Record<string, unknown>;
  expiresAt?: number;
}

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string; consumed?: number };

export function clientMetadata(c: RegisteredClient): Record<string, unknown> {
  const backend = c.kind === 'backend';
  return {
    client_id: c.clientId,
    client_name: c.name,
    redirect_uris: c.redirectUris,
    grant_types: backend ? ['client_credentials'] : ['authorization_code', 'refresh_token'],
    response_types: backend ? [] : ['code'],
    token_endpoint_auth_method: c.authMethod,
    id_token_signed_response_alg: 'RS384',
    ...(c.jwks ? { jwks: c.jwks } : {}),
    ...(c.jwksUri ? { jwks_uri: c.jwksUri } : {}),
    ...(c.secret ? { client_secret: c.secret } : {}),
  };
}

export function adapterFor(store: ResourceStore, clients: ClientRegistry) {
  return class StoreAdapter {
    constructor(private readonly name: string) {}

    private key(id: string) {
      return `oidc:${this.name}:${id}`;
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const value: Stored = { payload, ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}) };
      await store.setState(this.key(id), value);
      if (payload.grantId) {
        const gk = `oidc:grant-index:${payload.grantId}`;
        const list = (await store.getState<string[]>(gk)) ?? [];
        if (!list.includes(this.key(id))) await store.setState(gk, [...list, this.key(id)]);
      }
      if (payload.uid) await store.setState(`oidc:${this.name}:uid:${payload.uid}`, id);
      if (payload.userCode) await store.setState(`oidc:${this.name}:userCode:${payload.userCode}`, id);
    }

    async find(id: string): Promise<Payload | undefined> {
      if (this.name === 'Client') {
        const c = await clients.get(id);
        return c && c.status === 'referenced' ? nativeJson(clientMetadata(c) as Payload) : undefined;
      }
      const v = await store.getState<Stored | null>(this.key(id));
      if (!v) return undefined;
      if (v.expiresAt !== undefined && v.expiresAt <= Date.now()) return undefined;
      return nativeJson(v.payload as Payload);
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      const id = await store.getState<string | null>(`oidc:${this.name}:uid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      const id = await store.getState<string | null>(`oidc:${this.name}:userCode:${userCode}`);
      return id ? this.find(id) : undefined;
    }

    async consume(id: string): Promise<void> {
      const v = await store.getState<Stored | null>(this.key(id));
      if (v) await store.setState(this.key(id), { ...v, payload: { ...v.payload, consumed: Math.floor(Date.now() / 1000) } });
    }

    async destroy(id: string): Promise<void> {
      await store.setState(this.key(id), null);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const gk = `oidc:grant-index:${grantId}`;
      for (const k of (await store.getState<string[]>(gk)) ?? []) await store.setState(k, null);
      await store.setState(gk, null);
    }
  };
}
