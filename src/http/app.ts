import { randomUUID } from 'node:crypto';
import cors from 'cors';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Services, FhirRequest, FhirResponse, Method } from '../fhir/context';
import { parsePrefer } from '../fhir/context';
import { dispatch } from '../fhir/dispatch';
import { pathSegments } from '../fhir/url';
import { parseClientJson } from '../fhir/resource';
import type { Logger } from '../log';
import { FhirError, operationOutcome } from '../outcome';
import type { Config } from '../config';
import { asFhirError } from '../fhir/errors';
import { withTimeBudget } from '../store/budget';
import type { Auth } from '../auth';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'text/json']);
const XML_TYPES = new Set(['application/fhir+xml', 'application/xml', 'text/xml', 'xml']);
const XML_MESSAGE = 'XML is not supported by this server yet; send and accept application/fhir+json';
const METHODS = new Set<Method>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
/** The media types of FHIR resources themselves (anything else asked of a Binary is its native content). */
const FHIR_TYPES = new Set(['application/fhir+json', 'application/json+fhir', 'application/fhir+xml', 'application/xml+fhir', 'application/json']);

/** A read of a Binary whose Accept names no FHIR format: the Binary's own content is wanted, not the resource (http.html#binary). */
function wantsNativeBinary(req: Request, method: string, path: string[], format: string | undefined): boolean {
  if (path[0] !== 'Binary' || (method !== 'GET' && method !== 'HEAD') || format !== undefined) return false;
  if (!(path.length === 2 || (path.length === 4 && path[2] === '_history'))) return false;
  const accept = req.get('accept');
  return !!accept && !accept.split(',').some((t) => FHIR_TYPES.has(t.split(';')[0].trim().toLowerCase()));
}

/** The native form of a Binary resource: its bytes, with its content type. */
function sendNativeBinary(res: Response, fr: FhirResponse): void {
  if (fr.status !== 200 || fr.raw === undefined) return send(res, fr, FHIR_JSON, false);
  const binary = JSON.parse(fr.raw) as { contentType: string; data?: string; securityContext?: { reference?: string } };
  res.status(200);
  for (const [k, v] of Object.entries(fr.headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', binary.contentType);
  if (binary.securityContext?.reference) res.setHeader('X-Security-Context', binary.securityContext.reference);
  res.send(Buffer.from(binary.data ?? '', 'base64'));
}

/** The response media type the client asked for: _format first, then Accept. */
function responseType(req: Request, format: string | undefined): string {
  if (format !== undefined) {
    const f = format.toLowerCase().split(';')[0].trim();
    if (f === 'json' || JSON_TYPES.has(f)) return f === 'application/json' ? 'application/json; charset=utf-8' : FHIR_JSON;
    if (XML_TYPES.has(f)) throw new FhirError(415, 'not-supported', XML_MESSAGE);
    throw new FhirError(415, 'not-supported', `_format "${format}" is not supported; use json`);
  }
  const accept = req.get('accept');
  if (!accept) return FHIR_JSON;
  const types = accept.split(',').map((t) => t.split(';')[0].trim().toLowerCase());
  if (types.some((t) => t === 'application/fhir+json' || t === '*/*' || t === 'application/*' || t === 'application/json+fhir')) return FHIR_JSON;
  if (types.some((t) => JSON_TYPES.has(t))) return 'application/json; charset=utf-8';
  if (types.some((t) => XML_TYPES.has(t))) throw new FhirError(415, 'not-supported', XML_MESSAGE);
  return FHIR_JSON;
}

function readBody(req: Request, method: Method, path: string[], limits: Config): Pick<FhirRequest, 'body' | 'bodyKind'> {
  const buf = req.body as Buffer | undefined;
  if (!Buffer.isBuffer(buf) || buf.length === 0 || method === 'GET' || method === 'HEAD' || method === 'DELETE') return {};
  const ct = (req.get('content-type') ?? 'application/fhir+json').split(';')[0].trim().toLowerCase();
  // one resource (not a Bundle to process, not a Binary) is bounded before it is even parsed
  if (path.length > 0 && path[0] !== 'Binary' && !path.some((p) => p.startsWith('$')) && buf.length > limits.maxResourceBytes) {
    throw new FhirError(413, 'too-costly', `The resource is ${buf.length} bytes; this server accepts resources of at most ${limits.maxResourceBytes} bytes (MAX_RESOURCE_BYTES)`);
  }
  // FHIR Binary in its native form (http.html#binary): a PDF, a CDA document... becomes a Binary resource
  if (path[0] === 'Binary' && path.length <= 2 && (method === 'POST' || method === 'PUT') && !FHIR_TYPES.has(ct) && !JSON_TYPES.has(ct)) {
    const binary: Record<string, unknown> = { resourceType: 'Binary', ...(path[1] ? { id: path[1] } : {}), contentType: req.get('content-type')!.trim(), data: buf.toString('base64') };
    const context = req.get('x-security-context');
    if (context) binary.securityContext = { reference: context };
    return { body: binary, bodyKind: 'resource' };
  }
  const text = buf.toString('utf8');
  if (JSON_TYPES.has(ct)) {
    const body = parseClientJson(text, limits.maxArrayItems);
    return { body, bodyKind: method === 'PATCH' && Array.isArray(body) ? 'json-patch' : 'resource' };
  }
  if (ct === 'application/json-patch+json') return { body: parseClientJson(text, limits.maxArrayItems), bodyKind: 'json-patch' };
  if (ct === 'application/x-www-form-urlencoded') return { body: text, bodyKind: 'form' };
  if (XML_TYPES.has(ct)) throw new FhirError(415, 'not-supported', XML_MESSAGE);
  throw new FhirError(415, 'not-supported', `Content-Type ${ct} is not supported; send application/fhir+json (or application/json-patch+json for PATCH)`);
}

/** The route as a template (no ids, no values), for the logs. */
function routeOf(path: string[]): string {
  return path.map((s, i) => (i === 0 || s.startsWith('_') || s.startsWith('$') ? s : i === 3 ? ':vid' : ':id')).join('/');
}

function send(res: Response, fr: FhirResponse, type: string, pretty: boolean): void {
  res.status(fr.status);
  for (const [k, v] of Object.entries(fr.headers)) res.setHeader(k, v);
  if (fr.status === 304 || (fr.raw === undefined && fr.body === undefined)) {
    res.end();
    return;
  }
  let text = fr.raw ?? JSON.stringify(fr.body);
  if (pretty) text = JSON.stringify(JSON.parse(text), null, 2);
  res.setHeader('Content-Type', type);
  res.send(text);
}

function sendError(res: Response, err: FhirError, pretty: boolean): void {
  send(res, { status: err.status, headers: err.headers, body: operationOutcome(err.issues) }, FHIR_JSON, pretty);
}

/** What the FHIR base serves to anyone, without a token: the CapabilityStatement and SMART discovery. */
const isPublic = (path: string[]) => path.length === 1 && path[0] === 'metadata';
const PUBLIC_PATHS = new Set(['/metadata', '/.well-known/smart-configuration']);

/**
 * CORS of the FHIR API: a page may call it from the origin of a registered browser app (the origins
 * of the redirect URIs of referenced clients) or from this server's own origin; the public
 * documents (metadata, SMART discovery) from anywhere. A request from any other origin is refused
 * (403, preflight included), so that a page elsewhere cannot use a token it got hold of.
 */
function corsPolicy(svc: Services & { auth?: Auth }): express.RequestHandler {
  const own = svc.config.baseUrl ? new URL(svc.config.baseUrl).origin : undefined;
  const allowed = async (origin: string, path: string) => PUBLIC_PATHS.has(path) || origin === own || ((await svc.auth?.allowsOrigin(origin)) ?? false);
  const headers = cors({
    origin: (origin, done) => done(null, origin !== undefined),
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Accept', 'If-Match', 'If-None-Match', 'If-None-Exist', 'If-Modified-Since', 'Prefer', 'X-Request-Id'],
    exposedHeaders: ['Location', 'Content-Location', 'ETag', 'Last-Modified', 'X-Request-Id', 'Retry-After', 'X-Progress'],
    maxAge: 600,
  });
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin === undefined) return next();
    allowed(origin, req.path).then(
      (ok) => {
        if (ok) return headers(req, res, next);
        res.locals.route = `${req.method} /fhir (origin refused)`;
        sendError(res, new FhirError(403, 'forbidden', `Requests from ${origin} are not allowed: it is not the origin of a registered browser app`), false);
      },
      next,
    );
  };
}

/** A request id on every answer, the security headers every answer carries, and one log line per request (never ids or values). */
function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const id = req.get('x-request-id')?.slice(0, 64) ?? randomUUID();
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    // every answer, API and pages: no content sniffing, no address of ours in another site's Referer
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    const start = process.hrtime.bigint();
    res.locals.startedAt = start;
    res.on('finish', () => {
      log.info({ reqId: id, method: req.method, route: res.locals.route ?? 'other', status: res.statusCode, ms: Number(process.hrtime.bigint() - start) / 1e6 }, 'request');
    });
    next();
  };
}

/** The FHIR API: a request read into a FhirRequest, authenticated, dispatched under its time budget, answered. */
function fhirHandler(svc: Services & { auth?: Auth }, log: Logger): (req: Request, res: Response) => Promise<void> {
  const auth = svc.auth;
  return async (req: Request, res: Response) => {
    const query = [...new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '').entries()];
    const format = query.find(([k]) => k === '_format')?.[1];
    const pretty = query.some(([k, v]) => k === '_pretty' && v === 'true');
    try {
      const method = req.method as Method;
      if (!METHODS.has(method)) throw new FhirError(405, 'not-supported', `HTTP method ${req.method} is not supported`, undefined, { Allow: [...METHODS].join(', ') });
      const path = pathSegments(req.path);
      const native = wantsNativeBinary(req, method, path, format);
      const type = native ? FHIR_JSON : responseType(req, format);
      res.locals.route = `${method} /fhir/${routeOf(path)}`;
      // health data: never kept by a browser or a proxy (the CapabilityStatement is public)
      if (!isPublic(path)) res.setHeader('Cache-Control', 'no-store');
      const fr: FhirRequest = {
        method,
        path,
        query,
        ...readBody(req, method, path, svc.config),
        ifMatch: req.get('if-match'),
        ifNoneMatch: req.get('if-none-match'),
        ifNoneExist: req.get('if-none-exist'),
        ifModifiedSince: req.get('if-modified-since'),
        prefer: parsePrefer(req.get('prefer')),
        baseUrl: svc.config.baseUrl ?? `${req.protocol}://${req.get('host')}/fhir`,
        decisions: [],
      };
      if (!(path.length === 1 && path[0] === 'metadata')) {
        try {
          if (!auth) throw new FhirError(401, 'login', 'Authorization is not configured on this server: no request can be authorized', undefined, { 'WWW-Authenticate': 'Bearer' });
          fr.access = await auth.verify(req.get('authorization'));
        } catch (error) {
          // refused before it could start: the hooks still learn how it ended (an audit of refused attempts)
          await svc.hooks.requestComplete({ req: fr, error, ms: Number(process.hrtime.bigint() - res.locals.startedAt) / 1e6 });
          throw error;
        }
      }
      const answer = await withTimeBudget(svc.config.requestTimeLimitMs, () => dispatch(svc, fr));
      if (native) sendNativeBinary(res, answer);
      else send(res, answer, type, pretty);
    } catch (caught) {
      const err = asFhirError(caught);
      if (err instanceof FhirError) return sendError(res, err, pretty);
      // Never the message: it may quote stored content. The stack is enough to find the fault.
      log.error({ reqId: res.locals.requestId, err: (err as Error)?.name, stack: (err as Error)?.stack?.split('\n').slice(1, 8).join('\n') }, 'request failed');
      sendError(res, new FhirError(500, 'exception', `Internal server error (request ${res.locals.requestId})`), false);
    }
  };
}

/** Errors raised before the FHIR handler: a body too large, unreadable. */
function unreadableBody(svc: Services, log: Logger) {
  return (err: { type?: string; status?: number }, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err.type === 'entity.too.large') return sendError(res, new FhirError(413, 'too-costly', `The request body is larger than the limit of ${svc.config.bodyLimit} bytes`), false);
    if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') return sendError(res, new FhirError(415, 'not-supported', 'Unsupported content encoding or charset'), false);
    if (err.status && err.status >= 400 && err.status < 500) return sendError(res, new FhirError(err.status, 'invalid', 'The request body could not be read'), false);
    log.error({ reqId: res.locals.requestId, err: (err as Error)?.name }, 'request failed');
    return sendError(res, new FhirError(500, 'exception', `Internal server error (request ${res.locals.requestId})`), false);
  };
}

/**
 * The HTTP server. With `svc.auth` the SMART authorization server is mounted beside the FHIR base
 * and every FHIR request but `metadata` and `.well-known/smart-configuration` needs a valid bearer
 * token; without it, every such request is refused (401): the server is never open by default.
 */
export function createApp(svc: Services & { auth?: Auth }, log: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const auth = svc.auth;
  if (auth?.trustProxy) app.set('trust proxy', true);

  app.use(requestLog(log));

  if (auth) {
    app.use(new URL(auth.issuer).pathname, (req, res, next) => {
      res.locals.route = `${req.method} /auth${req.path.startsWith('/interaction/') ? '/interaction' : req.path.startsWith('/admin/clients') ? '/admin/clients' : req.path}`;
      next();
    }, auth.router);
  }

  app.use('/fhir', corsPolicy(svc));

  // SMART discovery: JSON whatever the Accept header says, no token needed
  app.get('/fhir/.well-known/smart-configuration', (_req, res) => {
    res.locals.route = 'GET /fhir/.well-known/smart-configuration';
    if (!auth) return sendError(res, new FhirError(404, 'not-found', 'Authorization is not configured on this server'), false);
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(auth.smartConfiguration());
  });

  app.use('/fhir', express.raw({ type: () => true, limit: svc.config.bodyLimit }));

  app.use('/fhir', fhirHandler(svc, log));

  app.use(unreadableBody(svc, log));
  app.use((req, res) => sendError(res, new FhirError(404, 'not-found', `Nothing here; the FHIR API is under /fhir`), false));
  return app;
}
