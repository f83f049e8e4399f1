import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Bundle, BundleEntry, FhirResource as Resource } from 'fhir/r4';
import { badRequest, FhirError, operationOutcome, preconditionFailed } from '../outcome';
import type { Dispatch, FhirRequest, FhirResponse, Method, Services } from './context';
import type { CommittedWrite } from './hooks';
import { conditionalMatches } from './conditional';
import { parseQueryString, pathSegments } from './url';
import { checkType, ID_RE, parseClientJson } from './resource';
import { asFhirError } from './errors';
import { checkBudget } from '../store/budget';

const METHODS: Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** The order in which a transaction processes its entries (FHIR R4 http.html#trules). */
const ORDER: Record<Method, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

interface Entry {
  index: number;
  method: Method;
  path: string[];
  query: [string, string][];
  fullUrl?: string;
  resource?: Resource;
  patch?: unknown;
  request: NonNullable<BundleEntry['request']>;
}

const statusLine = (status: number) => `${status} ${STATUS_CODES[status] ?? ''}`.trim();

/** "Patient/1?x=y" or an absolute URL under our base, as path segments and query. */
function splitUrl(base: string, url: string, where: string): { path: string[]; query: [string, string][] } {
  let u = url.startsWith(`${base}/`) ? url.slice(base.length + 1) : url;
  u = u.replace(/^\/+/, '');
  const q = u.indexOf('?');
  const pathPart = q >= 0 ? u.slice(0, q) : u;
  return { path: pathSegments(pathPart, where), query: q >= 0 ? parseQueryString(u.slice(q)) : [] };
}

function readEntries(svc: Services, bundle: Bundle, base: string, kind: string): Entry[] {
  const entries = bundle.entry ?? [];
  if (!Array.isArray(entries)) throw badRequest('Bundle.entry must be an array', 'Bundle.entry');
  const max = svc.config.maxBundleEntries;
  if (entries.length > max) throw new FhirError(413, 'too-costly', `A ${kind} may hold at most ${max} entries (MAX_BUNDLE_ENTRIES); this one has ${entries.length}`, 'Bundle.entry');
  const fullUrls = new Map<string, number>();
  return entries.map((e, index) => {
    const where = `Bundle.entry[${index}]`;
    // bdl-7: a fullUrl names one entry (references to it would be ambiguous)
    if (typeof e?.fullUrl === 'string') {
      const first = fullUrls.get(e.fullUrl);
      if (first !== undefined) throw badRequest(`${where}.fullUrl ${e.fullUrl} is already the fullUrl of Bundle.entry[${first}]`, `${where}.fullUrl`);
      fullUrls.set(e.fullUrl, index);
    }
    const request = e?.request;
    if (!request || typeof request !== 'object') throw badRequest(`${where} has no request`, `${where}.request`);
    const method = request.method as Method;
    if (!METHODS.includes(method)) throw badRequest(`${where}.request.method must be one of ${METHODS.join(', ')}`, `${where}.request.method`);
    if (typeof request.url !== 'string' || request.url === '') throw badRequest(`${where}.request.url is missing`, `${where}.request.url`);
    const { path, query } = splitUrl(base, request.url, `${where}.request.url`);
    if (path.length === 0) throw badRequest(`${where}.request.url must name a resource type, not the FHIR base`, `${where}.request.url`);
    const needsBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    if (needsBody && !e.resource) throw badRequest(`${where} (${method}) has no resource`, `${where}.resource`);
    let resource = e.resource as Resource | undefined;
    let patch: unknown;
    if (method === 'PATCH') {
      // A JSON Patch travels in a Binary, as the spec's transaction example does.
      const bin = resource as { resourceType?: string; data?: string; contentType?: string } | undefined;
      if (bin?.resourceType !== 'Binary' || typeof bin.data !== 'string') throw new FhirError(415, 'not-supported', `${where}: a PATCH entry carries its JSON Patch as a Binary (contentType application/json-patch+json, base64 data)`, `${where}.resource`);
      patch = parseClientJson(Buffer.from(bin.data, 'base64').toString('utf8'), svc.config.maxArrayItems, `${where}: the Binary's JSON Patch`, `${where}.resource.data`);
      resource = undefined;
    } else if (resource && resource.resourceType !== 'Binary') {
      const bytes = Buffer.byteLength(JSON.stringify(resource));
      if (bytes > svc.config.maxResourceBytes) throw new FhirError(413, 'too-costly', `${where}.resource is ${bytes} bytes; this server accepts resources of at most ${svc.config.maxResourceBytes} bytes (MAX_RESOURCE_BYTES)`, `${where}.resource`);
    }
    return { index, method, path, query, fullUrl: e.fullUrl, resource, patch, request };
  });
}

function toRequest(outer: FhirRequest, e: Entry, body: unknown, assignedId?: string): FhirRequest {
  return {
    method: e.method,
    path: e.path,
    query: e.query,
    body,
    bodyKind: e.method === 'PATCH' ? 'json-patch' : 'resource',
    ifMatch: e.request.ifMatch,
    ifNoneMatch: e.request.ifNoneMatch,
    ifNoneExist: e.request.ifNoneExist,
    ifModifiedSince: e.request.ifModifiedSince,
    prefer: { return: outer.prefer.return, handling: outer.prefer.handling },
    baseUrl: outer.baseUrl,
    assignedId,
    access: outer.access,
    decisions: [],
  };
}

function responseEntry(res: FhirResponse, fullUrl?: string): BundleEntry {
  const h = res.headers;
  const entry: BundleEntry = { response: { status: statusLine(res.status) } };
  if (h.Location) entry.response!.location = h.Location;
  if (h.ETag) entry.response!.etag = h.ETag;
  if (h['Last-Modified']) entry.response!.lastModified = new Date(h['Last-Modified']).toISOString();
  const body = res.raw !== undefined ? JSON.parse(res.raw) : res.body;
  if (body && (body as Resource).resourceType === 'OperationOutcome' && res.status < 300) entry.response!.outcome = body as Resource;
  else if (body) entry.resource = body as Resource;
  if (fullUrl && res.status < 300 && h.Location) entry.fullUrl = h.Location.replace(/\/_history\/[^/]+$/, '');
  return entry;
}

function errorEntry(err: FhirError): BundleEntry {
  return { response: { status: statusLine(err.status), outcome: operationOutcome(err.issues) } };
}

/** Re-anchors an entry's error on the entry: its status stays, its expressions point into the Bundle. */
function entryError(caught: unknown, e: Entry): unknown {
  const err = asFhirError(caught);
  if (!(err instanceof FhirError)) return err;
  const where = `Bundle.entry[${e.index}]`;
  const out = new FhirError(err.status, err.issues[0].code, `${where}: ${err.message}`);
  out.issues.splice(
    0,
    1,
    ...err.issues.map((i) => ({
      ...i,
      diagnostics: `${where} (${e.method} ${e.request.url}): ${i.diagnostics}`,
      expression: i.expression ? i.expression.map((x) => x.replace(/^[A-Z][A-Za-z]+(?=\.|$)/, `${where}.resource`)) : [where],
    })),
  );
  return out;
}

/** Replaces every string equal to a key of `ids` (fullUrls, conditional references) by its resolved reference. */
function rewrite(value: unknown, ids: Map<string, string>): unknown {
  if (typeof value === 'string') {
    const hit = ids.get(value);
    if (hit) return hit;
    if (value.includes('urn:uuid:') || value.includes('urn:oid:')) {
      // narrative links: <a href="urn:uuid:...">
      return value.replace(/urn:(?:uuid|oid):[A-Za-z0-9.\-]+/g, (m) => ids.get(m) ?? m);
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => rewrite(v, ids));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = rewrite(v, ids);
    return out;
  }
  return value;
}

/** Conditional references (`Patient?identifier=...`) anywhere in the entries' resources. */
function conditionalReferences(value: unknown, found: Set<string>): void {
  if (Array.isArray(value)) value.forEach((v) => conditionalReferences(v, found));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string' && /^[A-Z][A-Za-z]+\?./.test(v)) found.add(v);
      else conditionalReferences(v, found);
    }
  }
}

async function resolveConditionalReference(svc: Services, req: FhirRequest, ref: string): Promise<string> {
  const type = ref.slice(0, ref.indexOf('?'));
  checkType(svc, type);
  const matches = await conditionalMatches(svc, req, type, parseQueryString(ref));
  if (matches.length !== 1) throw preconditionFailed(`The conditional reference ${ref} matches ${matches.length === 0 ? 'no' : 'several'} resources; it must match exactly one`);
  return `${type}/${matches[0].id}`;
}

async function runTransaction(svc: Services, req: FhirRequest, entries: Entry[], dispatch: Dispatch): Promise<BundleEntry[]> {
  const ids = new Map<string, string>();
  const assigned = new Map<number, string>();
  const done = new Map<number, BundleEntry>();

  // 1. ids for the entries that create, so references between entries can be rewritten before any write
  for (const e of entries) {
    const type = e.path[0];
    try {
      if (e.method === 'POST' && e.path.length === 1) {
        checkType(svc, type);
        if (e.request.ifNoneExist) {
          const matches = await conditionalMatches(svc, req, type, parseQueryString(e.request.ifNoneExist));
          if (matches.length > 1) throw preconditionFailed(`ifNoneExist: several ${type} resources match`);
          if (matches.length === 1) {
            if (e.fullUrl) ids.set(e.fullUrl, `${type}/${matches[0].id}`);
            const existing = await dispatch(svc, { ...toRequest(req, e, undefined), method: 'GET', path: [type, matches[0].id], query: [] });
            done.set(e.index, responseEntry({ ...existing, status: 200 }));
            continue;
          }
        }
        const id = randomUUID();
        assigned.set(e.index, id);
        if (e.fullUrl) ids.set(e.fullUrl, `${type}/${id}`);
      } else if (e.method === 'PUT' && e.fullUrl) {
        if (e.path.length === 2 && ID_RE.test(e.path[1])) ids.set(e.fullUrl, `${type}/${e.path[1]}`);
        else if (e.path.length === 1 && e.query.length > 0) {
          checkType(svc, type);
          const matches = await conditionalMatches(svc, req, type, e.query);
          if (matches.length === 1) ids.set(e.fullUrl, `${type}/${matches[0].id}`);
          else if (matches.length === 0) {
            const id = (e.resource?.id as string | undefined) ?? randomUUID();
            if (!e.resource?.id) e.resource = { ...(e.resource as Resource), id };
            ids.set(e.fullUrl, `${type}/${id}`);
          }
        }
      }
    } catch (err) {
      throw entryError(err, e);
    }
  }

  // 2. conditional references, resolved against what is stored before the transaction
  const conditional = new Set<string>();
  for (const e of entries) conditionalReferences(e.resource, conditional);
  for (const ref of conditional) {
    try {
      ids.set(ref, await resolveConditionalReference(svc, req, ref));
    } catch (err) {
      const e = entries.find((x) => JSON.stringify(x.resource ?? null).includes(JSON.stringify(ref)))!;
      throw entryError(err, e);
    }
  }

  // 3. the entries, in the spec's order
  const ordered = [...entries].sort((x, y) => ORDER[x.method] - ORDER[y.method] || x.index - y.index);
  for (const e of ordered) {
    if (done.has(e.index)) continue;
    await betweenEntries();
    try {
      const body = e.method === 'PATCH' ? e.patch : e.resource ? rewrite(e.resource, ids) : undefined;
      const res = await dispatch(svc, toRequest(req, e, body, assigned.get(e.index)));
      done.set(e.index, responseEntry(res, e.fullUrl));
    } catch (err) {
      throw entryError(err, e);
    }
  }
  return entries.map((e) => done.get(e.index)!);
}

/**
 * Between two entries: other requests get their turn (an entry that only reads a synchronous store
 * never gives the event loop back otherwise), and a request past its time budget stops here.
 */
async function betweenEntries(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  checkBudget();
}

async function runBatch(svc: Services, req: FhirRequest, entries: Entry[], dispatch: Dispatch): Promise<BundleEntry[]> {
  const out: BundleEntry[] = [];
  for (const e of entries) {
    try {
      await betweenEntries();
      const res = await dispatch(svc, toRequest(req, e, e.method === 'PATCH' ? e.patch : e.resource));
      out.push(responseEntry(res, e.fullUrl));
    } catch (caught) {
      const err = entryError(caught, e);
      if (!(err instanceof FhirError)) throw err;
      out.push(errorEntry(err));
    }
  }
  return out;
}

/** A batch or transaction Bundle; `dispatch` runs each entry as a request of its own. */
export async function processBundle(svc: Services, req: FhirRequest, dispatch: Dispatch): Promise<FhirResponse> {
  const bundle = req.body as Bundle;
  if (!bundle || typeof bundle !== 'object' || bundle.resourceType !== 'Bundle') throw badRequest('POST to the FHIR base takes a Bundle of type batch or transaction', 'Bundle.resourceType');
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') throw badRequest(`Bundle.type must be batch or transaction to be processed, not "${bundle.type}"`, 'Bundle.type');
  const entries = readEntries(svc, bundle, req.baseUrl, bundle.type);
  let results: BundleEntry[];
  if (bundle.type === 'transaction') {
    if (!svc.store.supportsTransactions) {
      throw new FhirError(501, 'not-supported', 'Transaction Bundles need multi-document transactions, which this MongoDB deployment does not offer (a replica set or a sharded cluster does); send a batch instead');
    }
    // the entries' afterCommit waits for the transaction to commit; a rolled-back one has none
    const committed: CommittedWrite[] = [];
    results = await svc.store.transaction((tx) => {
      committed.length = 0; // MongoDB may run the transaction again after a transient error
      return runTransaction({ ...svc, store: tx, pendingCommits: committed }, req, entries, dispatch);
    });
    for (const c of committed) await svc.hooks.afterCommit(c);
  } else {
    results = await runBatch(svc, req, entries, dispatch);
  }
  const response: Bundle = { resourceType: 'Bundle', id: randomUUID(), type: bundle.type === 'transaction' ? 'transaction-response' : 'batch-response' };
  if (results.length) response.entry = results;
  return { status: 200, headers: {}, body: response };
}
