import type { ResourceStore, StateOptions } from '../store/types';
import type { ClientRegistry, RegisteredClient } from './registry';
import { nativeJson } from './esm';

/**
 * oidc-provider's storage (authorization codes, refresh tokens, grants, sessions, interactions,
 * replayed client-assertion `jti`s) on the store's server-owned state, so that it survives a
 * restart and works on both engines. Clients come from the client registry; a suspended client is
 * unknown to the provider.
 */
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
    // the token endpoint is given the digest of the presented secret (basicSecretDigested)
    ...(c.secretDigest ? { client_secret: c.secretDigest } : {}),
  };
}

/** How long the claim of a use is kept when its code or token has no expiry of its own. */
const USE_MARK_MS = 24 * 3600 * 1000;

export function adapterFor(store: ResourceStore, clients: ClientRegistry, InvalidGrant: new (description: string) => Error) {
  return class StoreAdapter {
    constructor(private readonly name: string) {}

    private key(id: string) {
      return `oidc:${this.name}:${id}`;
    }

    /**
     * Every value of a grant (its codes, refresh tokens, the grant itself) is in the grant's group,
     * so that revoking the grant deletes them all at once; every value expires with its model's TTL.
     */
    private options(id: string, payload: Payload, expiresAt: number | undefined): StateOptions {
      const group = payload.grantId ?? (this.name === 'Grant' ? id : undefined);
      return { ...(expiresAt ? { expiresAt } : {}), ...(group ? { group } : {}) };
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const options = this.options(id, payload, expiresIn ? Date.now() + expiresIn * 1000 : undefined);
      await store.setState(this.key(id), payload, options);
      if (payload.uid) await store.setState(`oidc:${this.name}:uid:${payload.uid}`, id, options);
      if (payload.userCode) await store.setState(`oidc:${this.name}:userCode:${payload.userCode}`, id, options);
    }

    async find(id: string): Promise<Payload | undefined> {
      if (this.name === 'Client') {
        const c = await clients.get(id);
        return c && c.status === 'referenced' ? nativeJson(clientMetadata(c) as Payload) : undefined;
      }
      const v = await store.getState<Payload>(this.key(id));
      // a value stored by an earlier version ({ payload, expiresAt }, no expiry of its own) is void: sign in again
      if (!v || (typeof v.payload === 'object' && Object.keys(v).every((k) => k === 'payload' || k === 'expiresAt'))) return undefined;
      return nativeJson(v);
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      const id = await store.getState<string>(`oidc:${this.name}:uid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      const id = await store.getState<string>(`oidc:${this.name}:userCode:${userCode}`);
      return id ? this.find(id) : undefined;
    }

    /**
     * Marks a code or refresh token used, once: uses sent at the same time all read it unused, so
     * each claims its use first and only the one that gets the claim goes on; the others revoke the
     * grant (a reuse, as oidc-provider treats a code or refresh token used twice).
     */
    async consume(id: string): Promise<void> {
      const v = await store.getState<Payload>(this.key(id));
      const expiresAt = typeof v?.exp === 'number' ? v.exp * 1000 : undefined;
      const what = this.name === 'AuthorizationCode' ? 'authorization code' : 'token';
      if (!(await store.claimState(`oidc:use:${this.name}:${id}`, 1, { expiresAt: expiresAt ?? Date.now() + USE_MARK_MS }))) {
        if (v?.grantId) await store.deleteStateGroup(v.grantId);
        throw new InvalidGrant(`this ${what} was already used`);
      }
      // gone since the provider read it: its grant was revoked meanwhile (a concurrent reuse)
      if (!v) throw new InvalidGrant(`this ${what} was revoked`);
      await store.setState(this.key(id), { ...v, consumed: Math.floor(Date.now() / 1000) }, this.options(id, v, expiresAt));
    }

    async destroy(id: string): Promise<void> {
      await store.setState(this.key(id), null);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await store.deleteStateGroup(grantId);
    }
  };
}
