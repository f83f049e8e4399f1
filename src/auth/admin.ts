import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { forbidden } from '../policy/access';
import { bearerError, OAuthError } from './errors';
import type { ClientRegistry, RegisteredClient } from './registry';
import type { Verify } from './verify';

/** A client as the API shows it: never its secret's digest. */
const shown = (c: RegisteredClient) => {
  const { secretDigest, ...rest } = c;
  void secretDigest;
  return rest;
};

/**
 * The admin API: the client registry under /admin/clients (list, one, register, suspend,
 * reference), for a system/*.cruds token (the administrator's).
 */
export function adminRoutes(router: Router, o: { clients: ClientRegistry; verify: Verify }): void {
  const { clients } = o;
  const admin = async (req: Request, _res: Response, next: NextFunction) => {
    try {
      const access = await o.verify(req.get('authorization'));
      if (!access.scopes.some((s) => s.context === 'system' && s.type === '*' && s.permissions.size === 5)) throw forbidden('The client registry is managed with a system/*.cruds token');
      next();
    } catch (e) {
      next(bearerError(e));
    }
  };
  router.get('/admin/clients', admin, async (_req, res) => res.json((await clients.list()).map(shown)));
  router.get('/admin/clients/:id', admin, async (req, res) => {
    const c = await clients.get(String(req.params.id));
    if (!c) throw new OAuthError(404, 'not_found');
    res.json(shown(c));
  });
  router.post('/admin/clients', admin, express.json({ limit: '100kb' }), async (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    let added: Awaited<ReturnType<ClientRegistry['add']>>;
    try {
      added = await clients.add({
        clientId: String(b.client_id ?? ''),
        name: String(b.client_name ?? b.client_id ?? ''),
        kind: (b.kind as never) ?? 'patient-app',
        redirectUris: (b.redirect_uris as string[]) ?? [],
        scope: String(b.scope ?? ''),
        authMethod: (b.token_endpoint_auth_method as never) ?? 'none',
        jwks: b.jwks as never,
        jwksUri: b.jwks_uri as string | undefined,
      });
    } catch (e) {
      throw new OAuthError(400, 'invalid_client_metadata', (e as Error).message);
    }
    const { secret, ...client } = added;
    res.status(201).json({ ...shown(client), ...(secret ? { client_secret: secret } : {}) });
  });
  router.post('/admin/clients/:id/:action', admin, async (req, res) => {
    const action = req.params.action;
    if (action !== 'suspend' && action !== 'reference') throw new OAuthError(404, 'not_found');
    let updated: RegisteredClient;
    try {
      updated = await clients.setStatus(String(req.params.id), action === 'suspend' ? 'suspended' : 'referenced');
    } catch (e) {
      throw new OAuthError(404, 'not_found', (e as Error).message);
    }
    res.json(shown(updated));
  });
}
