import { FhirError, notSupported } from '../outcome';
import type { FhirRequest, FhirResponse, Method, Services } from './context';
import { checkType } from './resource';
import * as fhir from './interactions';
import { capabilityStatement } from './capabilities';
import { processBundle } from './batch';
import { validateOperation } from './validate-operation';
import { compartmentSearch, everything, systemSearch, typeSearch } from './search';
import { reindexOperation } from './reindex';
import { requireAdministrator, requirePermission } from '../policy/access';

function methodNotAllowed(method: Method, allowed: Method[], what: string): FhirError {
  return new FhirError(405, 'not-supported', `${method} is not allowed on ${what}; allowed: ${allowed.join(', ')}`, undefined, { Allow: allowed.join(', ') });
}

function allow(req: FhirRequest, allowed: Method[], what: string): void {
  if (!allowed.includes(req.method)) throw methodNotAllowed(req.method, allowed, what);
}

/** The parameters of a POSTed search form. */
function formParams(req: FhirRequest): [string, string][] {
  if (req.body === undefined) return [];
  if (req.bodyKind !== 'form' || typeof req.body !== 'string') throw new FhirError(415, 'not-supported', '_search takes its parameters as application/x-www-form-urlencoded');
  return fhir.parseQueryString(req.body);
}

/**
 * Routes a FHIR request to its interaction. Used by the HTTP layer and by Bundle entries alike, so
 * the scope check of each interaction is here, once (src/policy/access.ts: create c, read/vread r,
 * update/patch u, delete d, search s; instance history r; type and system history s); the
 * confinement to a patient's compartment is applied where the store is queried or written.
 */
export async function dispatch(svc: Services, req: FhirRequest): Promise<FhirResponse> {
  const [a, b, c, d, ...more] = req.path;
  if (a === 'Patient' && b !== undefined && c === '$everything' && d === undefined) {
    allow(req, ['GET', 'HEAD'], 'Patient/[id]/$everything');
    requirePermission(req.access, 'r', 'Patient');
    return everything(svc, req, b);
  }
  if (svc.validator && a === '$validate' && b === undefined) {
    allow(req, ['POST'], '$validate');
    return validateOperation(svc, req, undefined);
  }
  if (svc.validator && a !== undefined && svc.resourceTypes.has(a) && ((b === '$validate' && c === undefined) || (b !== undefined && c === '$validate' && d === undefined))) {
    allow(req, ['POST'], `${a}/$validate`);
    return validateOperation(svc, req, a, b === '$validate' ? undefined : b);
  }
  if (a === '$reindex' && (b === undefined || c === undefined)) {
    requireAdministrator(req.access, '$reindex');
    return reindexOperation(svc, req, b);
  }
  const op = req.path.find((s) => s.startsWith('$'));
  if (op) throw notSupported(501, `The operation ${op} is not supported by this server`);

  if (a === undefined) {
    if (req.method === 'POST') return processBundle(svc, req);
    allow(req, ['GET', 'HEAD', 'POST'], 'the FHIR base');
    return systemSearch(svc, req, req.query);
  }
  if (a === '_search' && b === undefined) {
    allow(req, ['POST'], '_search');
    return systemSearch(svc, req, [...req.query, ...formParams(req)]);
  }
  if (a === 'metadata' && b === undefined) {
    allow(req, ['GET', 'HEAD'], 'metadata');
    const mode = req.query.find(([k]) => k === 'mode')?.[1];
    if (mode === 'terminology') throw new FhirError(501, 'not-supported', 'metadata?mode=terminology: this server does not publish a TerminologyCapabilities resource');
    if (mode !== undefined && mode !== 'full' && mode !== 'normative') throw new FhirError(400, 'invalid', `metadata: mode is full, normative or terminology, got "${mode}"`);
    return { status: 200, headers: {}, body: capabilityStatement(svc, req.baseUrl) };
  }
  if (a === '_history' && b === undefined) {
    allow(req, ['GET', 'HEAD'], 'system history');
    return fhir.history(svc, req);
  }
  checkType(svc, a);
  const type = a;
  const need = (perm: 'c' | 'r' | 'u' | 'd' | 's') => requirePermission(req.access, perm, type);
  if (b === undefined) {
    need(req.method === 'GET' || req.method === 'HEAD' ? 's' : req.method === 'POST' ? 'c' : req.method === 'PUT' || req.method === 'PATCH' ? 'u' : 'd');
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return typeSearch(svc, req, type, req.query);
      case 'POST':
        return fhir.create(svc, req, type);
      case 'PUT':
        return fhir.conditionalUpdate(svc, req, type);
      case 'DELETE':
        return fhir.conditionalDelete(svc, req, type);
      case 'PATCH':
        return fhir.conditionalPatch(svc, req, type);
    }
  }
  if (b === '_search' && c === undefined) {
    allow(req, ['POST'], `${type}/_search`);
    need('s');
    return typeSearch(svc, req, type, [...req.query, ...formParams(req)]);
  }
  if (b === '_history' && c === undefined) {
    allow(req, ['GET', 'HEAD'], `${type}/_history`);
    need('s');
    return fhir.history(svc, req, type);
  }
  const id = b;
  if (c === undefined) {
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        need('r');
        return fhir.read(svc, req, type, id);
      case 'PUT':
        need('u');
        return fhir.update(svc, req, type, id);
      case 'PATCH':
        need('u');
        return fhir.patch(svc, req, type, id);
      case 'DELETE':
        need('d');
        return fhir.remove(svc, req, type, id);
      case 'POST':
        throw methodNotAllowed(req.method, ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE'], `${type}/${id}`);
    }
  }
  if (c === '_history' && more.length === 0) {
    if (d === undefined) {
      allow(req, ['GET', 'HEAD'], `${type}/${id}/_history`);
      need('r');
      return fhir.history(svc, req, type, id);
    }
    allow(req, ['GET', 'HEAD'], `${type}/${id}/_history/${d}`);
    need('r');
    return fhir.vread(svc, req, type, id, d);
  }
  if ((svc.resourceTypes.has(c) || c === '*') && d === undefined) {
    allow(req, ['GET', 'HEAD'], `${type}/${id}/${c}`);
    if (c !== '*') requirePermission(req.access, 's', c);
    return compartmentSearch(svc, req, type, id, c, req.query);
  }
  throw new FhirError(404, 'not-found', `No FHIR interaction at ${req.path.join('/')}`);
}
