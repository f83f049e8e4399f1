import type { ErrorRequestHandler, Request, Response } from 'express';
import type * as OidcProviderModule from 'oidc-provider';
import type { Logger } from '../log';
import { FhirError } from '../outcome';
import { native } from './esm';
import { errorPage, PAGE_HEADERS, sendPage, type Back } from './pages';

/**
 * Every error of the authorization server becomes one of three answers, chosen here:
 * - an OAuth error as JSON (`{error, error_description}`) from the APIs: EHR launch, admin,
 *   introspection (OAuthError);
 * - an OAuth error given to the app at its redirect URI, when a sign-in ends without a code
 *   (refuseInteraction);
 * - a French page for a person in a browser (PageError, oidc-provider's own errors, and whatever
 *   else fails under /auth).
 * Routes throw OAuthError and PageError; errorAnswers, mounted last, answers them.
 */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description ?? error);
  }
}

/** A page telling a person why their request stops here, with a way back to the app where there is one. */
export class PageError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
    readonly back?: Back,
  ) {
    super(message);
  }
}

/** The refusals of a bearer token (verify's 401, a 403) as the APIs' OAuth errors (RFC 6750); anything else unchanged. */
export function bearerError(e: unknown): unknown {
  return e instanceof FhirError ? new OAuthError(e.status, e.status === 401 ? 'invalid_token' : 'insufficient_scope', e.message, e.headers) : e;
}

/** Paths (under /auth) whose answers are JSON, their errors too. */
const isApi = (path: string) => path.startsWith('/admin/') || path === '/launch' || path === '/introspect';

/** oidc-provider's error pages (its renderError): the OAuth error and its description, with the headers of every page. */
export async function renderProviderError(ctx: { set(headers: Record<string, string>): void; body: unknown }, out: Record<string, string>): Promise<void> {
  ctx.set(PAGE_HEADERS);
  ctx.body = errorPage('Erreur', `${out.error}${out.error_description ? ` : ${out.error_description}` : ''}`);
}

type Provider = OidcProviderModule.default;

/** Ends a sign-in without a code: the app is sent the error at its redirect URI (RFC 6749 §4.1.2.1). */
export async function refuseInteraction(provider: Provider, req: Request, res: Response, error: 'access_denied' | 'invalid_scope' | 'invalid_request', description: string): Promise<void> {
  await provider.interactionFinished(req, res, native({ error, error_description: description }), { mergeWithLastSubmission: false });
}

/** The error handler of the routes under /auth, mounted after them all. */
export function errorAnswers(log: Logger): ErrorRequestHandler {
  return (err: Error, req, res, next) => {
    if (res.headersSent) return next(err);
    if (err instanceof OAuthError) return res.status(err.status).set(err.headers).json({ error: err.error, ...(err.description !== undefined ? { error_description: err.description } : {}) });
    if (err instanceof PageError) return sendPage(res, err.status, errorPage(err.title, err.message, err.back));
    // a sign-in that is gone (expired, or its cookie lost); oidc-provider's errors carry a 400 status too
    if (err.name === 'SessionNotFound' || err.name === 'InvalidRequest') return sendPage(res, 400, errorPage('Session expirée', 'Cette page de connexion a expiré. Recommencez depuis l’application.'));
    // the client's own mistakes: a body that does not parse or is too large, an address that does not decode
    const status = err instanceof URIError ? 400 : (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const message = status === 413 ? 'The request body is too large' : err instanceof URIError ? 'The address does not decode' : 'The request body does not parse';
      if (isApi(req.path)) return res.status(status).json({ error: 'invalid_request', error_description: message });
      return sendPage(res, status, errorPage('Requête invalide', status === 413 ? 'La requête est trop volumineuse.' : 'La requête est mal formée. Recommencez depuis l’application.'));
    }
    log.error({ err: err.name, stack: err.stack?.split('\n').slice(0, 6).join('\n') }, 'authorization page failed');
    return sendPage(res, 500, errorPage('Erreur', 'Une erreur est survenue. Réessayez plus tard.'));
  };
}
