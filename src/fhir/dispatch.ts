import { FhirError, notSupported } from '../outcome';
import type { FhirRequest, FhirResponse, Method, Services } from './context';
import { checkType } from './resource';
import * as fhir from './interactions';
import { capabilityStatement } from './capabilities';
import { processBundle } from './batch';

function methodNotAllowed(method: Method, allowed: Method[], what: string): FhirError {
  return new FhirError(405, 'not-supported', `${method} is not allowed on ${what}; allowed: ${allowed.join(', ')}`, undefined, { Allow: allowed.join(', ') });
}

function allow(req: FhirRequest, allowed: Method[], what: string): void {
  if (!allowed.includes(req.method)) throw methodNotAllowed(req.method, allowed, what);
}

/** Routes a FHIR request to its interaction. Used by the HTTP layer and by Bundle entries alike. */
export async function dispatch(svc: Services, req: FhirRequest): Promise<FhirResponse> {
  const [a, b, c, d, ...more] = req.path;
  const op = req.path.find((s) => s.startsWith('$'));
  if (op) throw notSupported(501, `The operation ${op} is not supported by this server`);

  if (a === undefined) {
    if (req.method === 'POST') return processBundle(svc, req);
    if (req.method === 'GET' || req.method === 'HEAD') throw notSupported(501, 'System-level search is not supported by this server yet');
    throw methodNotAllowed(req.method, ['POST'], 'the FHIR base');
  }
  if (a === 'metadata' && b === undefined) {
    allow(req, ['GET', 'HEAD'], 'metadata');
    return { status: 200, headers: {}, body: capabilityStatement(svc, req.baseUrl) };
  }
  if (a === '_history' && b === undefined) {
    allow(req, ['GET', 'HEAD'], 'system history');
    return fhir.history(svc, req);
  }
  checkType(svc, a);
  const type = a;
  if (b === undefined) {
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return fhir.search(svc, req, type, req.query);
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
    const form = req.bodyKind === 'form' && typeof req.body === 'string' ? fhir.parseQueryString(req.body) : [];
    if (req.body !== undefined && req.bodyKind !== 'form') throw new FhirError(415, 'not-supported', `${type}/_search takes its parameters as application/x-www-form-urlencoded`);
    return fhir.search(svc, req, type, [...req.query, ...form]);
  }
  if (b === '_history' && c === undefined) {
    allow(req, ['GET', 'HEAD'], `${type}/_history`);
    return fhir.history(svc, req, type);
  }
  const id = b;
  if (c === undefined) {
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return fhir.read(svc, req, type, id);
      case 'PUT':
        return fhir.update(svc, req, type, id);
      case 'PATCH':
        return fhir.patch(svc, req, type, id);
      case 'DELETE':
        return fhir.remove(svc, req, type, id);
      case 'POST':
        throw methodNotAllowed(req.method, ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE'], `${type}/${id}`);
    }
  }
  if (c === '_history' && more.length === 0) {
    if (d === undefined) {
      allow(req, ['GET', 'HEAD'], `${type}/${id}/_history`);
      return fhir.history(svc, req, type, id);
    }
    allow(req, ['GET', 'HEAD'], `${type}/${id}/_history/${d}`);
    return fhir.vread(svc, req, type, id, d);
  }
  if (svc.resourceTypes.has(c) && d === undefined) throw notSupported(501, 'Compartment search is not supported by this server yet');
  throw new FhirError(404, 'not-found', `No FHIR interaction at ${req.path.join('/')}`);
}
