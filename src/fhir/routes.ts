import { FhirError, notSupported } from '../outcome';
import { requirePermission } from '../policy/access';
import type { Permission } from '../policy/scopes';
import { processBundle } from './batch';
import { capabilityStatement } from './capabilities';
import type { Dispatch, FhirRequest, FhirResponse, Method, Services } from './context';
import { history } from './history';
import * as fhir from './interactions';
import { parseQueryString } from './url';
import { OPERATIONS, type Operation, type OperationTarget } from './operations';
import { compartmentSearch, systemSearch, typeSearch } from './search';

/**
 * The route table of the FHIR API: each path shape with, per method, the permission its interaction
 * needs (create c, read/vread r, update/patch u, delete d, search s; instance history r; type and
 * system history s) and the interaction. HTTP requests and Bundle entries go through it alike;
 * operations (`$name`, src/fhir/operations) are routed by their own registry. The confinement to a
 * patient's compartment is applied where the store is queried or written (src/policy).
 */

/** What a path template captured: `{type}` a resource type, `{id}`, `{vid}` a version, `{compartment}` a type or `*`. */
export interface RouteParams {
  type?: string;
  id?: string;
  vid?: string;
  compartment?: string;
}

interface MethodRoute {
  /** the permission and the type it is on, checked before the interaction runs */
  permission?: (p: RouteParams) => [Permission, string];
  run: (svc: Services, req: FhirRequest, p: RouteParams, dispatch: Dispatch) => Promise<FhirResponse>;
}

export interface Route {
  /** segments: literals, or `{type}`, `{id}`, `{vid}`, `{compartment}` */
  path: string;
  /** how a 405 names it */
  what: string;
  methods: Partial<Record<Method, MethodRoute>>;
}

/** The parameters of a POSTed search form. */
function formParams(req: FhirRequest): [string, string][] {
  if (req.body === undefined) return [];
  if (req.bodyKind !== 'form' || typeof req.body !== 'string') throw new FhirError(415, 'not-supported', '_search takes its parameters as application/x-www-form-urlencoded');
  return parseQueryString(req.body);
}

function metadata(svc: Services, req: FhirRequest): FhirResponse {
  const mode = req.query.find(([k]) => k === 'mode')?.[1];
  if (mode === 'terminology') throw new FhirError(501, 'not-supported', 'metadata?mode=terminology: this server does not publish a TerminologyCapabilities resource');
  if (mode !== undefined && mode !== 'full' && mode !== 'normative') throw new FhirError(400, 'invalid', `metadata: mode is full, normative or terminology, got "${mode}"`);
  return { status: 200, headers: {}, body: capabilityStatement(svc, req.baseUrl) };
}

const on = (perm: Permission) => (p: RouteParams): [Permission, string] => [perm, p.type!];
const get = (r: MethodRoute) => ({ GET: r, HEAD: r });

export const ROUTES: readonly Route[] = [
  { path: '', what: 'the FHIR base', methods: { ...get({ run: (svc, req) => systemSearch(svc, req, req.query) }), POST: { run: (svc, req, _p, dispatch) => processBundle(svc, req, dispatch) } } },
  { path: '_search', what: '_search', methods: { POST: { run: (svc, req) => systemSearch(svc, req, [...req.query, ...formParams(req)]) } } },
  { path: 'metadata', what: 'metadata', methods: get({ run: async (svc, req) => metadata(svc, req) }) },
  { path: '_history', what: 'system history', methods: get({ run: (svc, req) => history(svc, req) }) },
  {
    path: '{type}',
    what: '[type]',
    methods: {
      ...get({ permission: on('s'), run: (svc, req, p) => typeSearch(svc, req, p.type!, req.query) }),
      POST: { permission: on('c'), run: (svc, req, p) => fhir.create(svc, req, p.type!) },
      PUT: { permission: on('u'), run: (svc, req, p) => fhir.conditionalUpdate(svc, req, p.type!) },
      PATCH: { permission: on('u'), run: (svc, req, p) => fhir.conditionalPatch(svc, req, p.type!) },
      DELETE: { permission: on('d'), run: (svc, req, p) => fhir.conditionalDelete(svc, req, p.type!) },
    },
  },
  { path: '{type}/_search', what: '[type]/_search', methods: { POST: { permission: on('s'), run: (svc, req, p) => typeSearch(svc, req, p.type!, [...req.query, ...formParams(req)]) } } },
  { path: '{type}/_history', what: '[type]/_history', methods: get({ permission: on('s'), run: (svc, req, p) => history(svc, req, p.type!) }) },
  {
    path: '{type}/{id}',
    what: '[type]/[id]',
    methods: {
      ...get({ permission: on('r'), run: (svc, req, p) => fhir.read(svc, req, p.type!, p.id!) }),
      PUT: { permission: on('u'), run: (svc, req, p) => fhir.update(svc, req, p.type!, p.id!) },
      PATCH: { permission: on('u'), run: (svc, req, p) => fhir.patch(svc, req, p.type!, p.id!) },
      DELETE: { permission: on('d'), run: (svc, req, p) => fhir.remove(svc, req, p.type!, p.id!) },
    },
  },
  { path: '{type}/{id}/_history', what: '[type]/[id]/_history', methods: get({ permission: on('r'), run: (svc, req, p) => history(svc, req, p.type!, p.id!) }) },
  { path: '{type}/{id}/_history/{vid}', what: '[type]/[id]/_history/[vid]', methods: get({ permission: on('r'), run: (svc, req, p) => fhir.vread(svc, req, p.type!, p.id!, p.vid!) }) },
  {
    path: '{type}/{id}/{compartment}',
    what: '[compartment]/[id]/[type]',
    methods: get({
      permission: (p) => ['s', p.compartment === '*' ? p.type! : p.compartment!],
      run: (svc, req, p) => compartmentSearch(svc, req, p.type!, p.id!, p.compartment!, req.query),
    }),
  },
];

const TEMPLATES = ROUTES.map((r) => (r.path === '' ? [] : r.path.split('/')));

/** The route a path takes, with what its template captured; undefined when none. */
export function matchRoute(svc: Services, path: string[]): { route: Route; params: RouteParams } | undefined {
  for (let i = 0; i < ROUTES.length; i++) {
    const template = TEMPLATES[i];
    if (template.length !== path.length) continue;
    const params: RouteParams = {};
    const fits = template.every((t, k) => {
      const s = path[k];
      if (t === '{type}') return svc.resourceTypes.has(s) && ((params.type = s), true);
      if (t === '{compartment}') return (svc.resourceTypes.has(s) || s === '*') && ((params.compartment = s), true);
      if (t === '{id}') return !s.startsWith('_') && !s.startsWith('$') && ((params.id = s), true);
      if (t === '{vid}') return ((params.vid = s), true);
      return t === s;
    });
    if (fits) return { route: ROUTES[i], params };
  }
  return undefined;
}

function methodNotAllowed(method: Method, allowed: string[], what: string): FhirError {
  return new FhirError(405, 'not-supported', `${method} is not allowed on ${what}; allowed: ${allowed.join(', ')}`, undefined, { Allow: allowed.join(', ') });
}

/** The operation a path calls (a `$name` segment), where, or undefined when the path names no operation. */
function matchOperation(svc: Services, path: string[]): { op: Operation; target: OperationTarget } | undefined {
  const at = path.findIndex((s) => s.startsWith('$'));
  if (at < 0) return undefined;
  const name = path[at].slice(1);
  const level = (['system', 'type', 'instance'] as const)[at];
  const target: OperationTarget = { level: level ?? 'instance', type: at >= 1 ? path[0] : undefined, id: at >= 2 ? path[1] : undefined, rest: path.slice(at + 1) };
  const op = OPERATIONS.find(
    (o) => o.name === name && level !== undefined && o.levels.includes(level) && (o.available?.(svc) ?? true) && (level === 'system' || (svc.resourceTypes.has(target.type!) && (!o.types || o.types.includes(target.type!)))),
  );
  if (!op) throw notSupported(501, `The operation $${name} is not supported by this server${level ? '' : ' at this place'}`);
  if (!op.subPaths && target.rest.length > 0) throw new FhirError(404, 'not-found', `No FHIR interaction at ${path.join('/')}`);
  return { op, target };
}

/** Routes a FHIR request to its interaction or operation, after the permission check it needs. */
export async function route(svc: Services, req: FhirRequest, dispatch: Dispatch): Promise<FhirResponse> {
  const operation = matchOperation(svc, req.path);
  if (operation) {
    const { op, target } = operation;
    if (!op.methods.includes(req.method)) throw methodNotAllowed(req.method, op.methods, `$${op.name}`);
    const decision = op.permission(req, target);
    if (decision) req.decisions?.push(decision);
    return op.handler(svc, req, target);
  }
  const match = matchRoute(svc, req.path);
  if (!match) {
    const first = req.path[0];
    if (first !== undefined && !svc.resourceTypes.has(first) && /^[A-Z]/.test(first)) throw new FhirError(404, 'not-found', `Unknown resource type "${first}"`);
    throw new FhirError(404, 'not-found', `No FHIR interaction at ${req.path.join('/')}`);
  }
  const m = match.route.methods[req.method];
  if (!m) throw methodNotAllowed(req.method, Object.keys(match.route.methods), match.route.what);
  if (m.permission) {
    const [perm, type] = m.permission(match.params);
    req.decisions?.push(requirePermission(req.access, perm, type));
  }
  return m.run(svc, req, match.params, dispatch);
}
