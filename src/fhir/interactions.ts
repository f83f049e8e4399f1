import { createHash, randomUUID } from 'node:crypto';
import type { Resource } from 'fhir/r4';
import * as jsonpatch from 'fast-json-patch';
import { badRequest, FhirError, informational, notFound, operationOutcome, preconditionFailed, type Issue } from '../outcome';
import { emptyIndex, extractIndex, type IndexEntries } from '../search/extract';
import { parseCount, parseSearch } from '../search/parse';
import type { SearchPlan } from '../search/plan';
import { dateRange } from '../search/values';
import type { Mutator, StoredVersion, WriteInput, WriteResult } from '../store/types';
import type { FhirRequest, FhirResponse, Services } from './context';
import { checkId, etag, httpDate, resourceBody, stamp, versionHeaders, versionOfEtag } from './resource';
import { historyBundle } from './bundles';
import { uniqueIdentifierError } from './unique-identifiers';
import { UniqueKeyError } from '../store/errors';
import { ensureVisible, isConfined, restrictScopes, visible, writeGuard, type WriteGuard } from '../policy/access';

/**
/**
 * What a create or an update checks of the resource as it would be stored, before storing it; the
 * writes and $validate both run it: the references it may hold, validation (base R4, meta.profile,
 * the required profiles and `profiles`: errors throw 422 with every issue), then the policy's check of
 * the new content (403). Returns the index to store and the warnings.
 */
export function checkWriteOf(svc: Services, req: FhirRequest, guard: WriteGuard, resource: Resource, profiles: string[] = []): { index: IndexEntries; warnings: Issue[] } {
  checkLocalReferences(resource);
  const warnings = svc.validator?.check(resource, profiles) ?? [];
  const index = extractIndex(svc.registry, resource, req.baseUrl);
  guard.next(resource.resourceType, resource.id!, index);
  return { index, warnings };
}

/**
 * The resource to store with its index (checkWriteOf), for a write whose content depends on the
 * current version (a patch); its warnings replace those of an earlier run in `warnings`. Creates and
 * updates are checked once, before the store's atomic section: their content is known and their
 * index does not depend on the version number or time the store gives them.
 */
const indexed = (svc: Services, req: FhirRequest, guard: WriteGuard, resource: Resource, warnings: Issue[]): WriteInput => {
  const { index, warnings: found } = checkWriteOf(svc, req, guard, resource);
  warnings.length = 0;
  warnings.push(...found);
  return { resource, index };
};

/** The body of an update of type/id: a resource of the type whose id is the id of the URL (400 otherwise). */
export function updateBody(svc: Services, body: unknown, type: string, id: string): Resource {
  checkId(id);
  const resource = resourceBody(svc, body, type);
  if (resource.id === undefined) throw badRequest(`The ${type} in the body has no id; an update needs id "${id}" in the body`, `${type}.id`);
  if (resource.id !== id) throw badRequest(`The id in the body (${resource.id}) does not match the id in the URL (${id})`, `${type}.id`);
  return resource;
}

/**
 * A reference to `urn:uuid:` or `urn:oid:` names an entry of the Bundle it was sent in; stored
 * as is (a batch does not resolve them, a transaction did not find the entry) it would point
 * nowhere. Bundles themselves (documents, messages) keep theirs: they resolve inside the Bundle.
 */
function checkLocalReferences(resource: Resource): void {
  if (resource.resourceType === 'Bundle') return;
  const found: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'reference' && typeof x === 'string' && /^urn:(uuid|oid):/.test(x)) found.push(`${path}.reference`);
        else walk(x, `${path}.${k}`);
      }
    }
  };
  walk(resource, resource.resourceType);
  if (found.length) {
    throw new FhirError(400, 'invalid', `${found.length === 1 ? 'A reference' : `${found.length} references`} to an entry that is not in this request (urn:uuid or urn:oid): a batch does not resolve references between its entries, a transaction only to its own entries' fullUrl`, found);
  }
}

/** A write whose refusal for a unique identifier (an INS another resource carries) is the client's 409, naming it in the resource written. */
async function uniquely(written: () => Resource | undefined, write: () => Promise<WriteResult>): Promise<WriteResult> {
  try {
    return await write();
  } catch (e) {
    throw e instanceof UniqueKeyError ? uniqueIdentifierError(e, written()) : e;
  }
}

/**
 * A write through the hook points: beforeWrite inside the store's atomic section, after the
 * interaction's own checks; afterCommit once it committed (in a transaction, once the transaction
 * committed: see pendingCommits).
 */
async function write(svc: Services, req: FhirRequest, type: string, id: string, mutate: Mutator): Promise<WriteResult> {
  const result = await svc.store.write(type, id, (current, next) => {
    const input = mutate(current, next);
    return input && svc.hooks.beforeWrite({ req, type, id, current, input });
  });
  if (!result.unchanged) {
    const committed = { req, type, id, result };
    if (svc.pendingCommits) svc.pendingCommits.push(committed);
    else await svc.hooks.afterCommit(committed);
  }
  return result;
}

export const guardOf = (svc: Services, req: FhirRequest, perm: 'c' | 'u' | 'd', type: string, id: string) => writeGuard(svc, req.access, perm, type, id, req.baseUrl);

function checkIfMatch(req: FhirRequest, current: StoredVersion | undefined, what: string): void {
  if (req.ifMatch === undefined) return;
  const wanted = versionOfEtag(req.ifMatch);
  if (!current) throw preconditionFailed(`If-Match: ${what} does not exist`);
  if (String(current.versionId) !== wanted) throw preconditionFailed(`If-Match: ${what} is at version ${current.versionId}, not ${wanted}`);
}

/** The answer to a successful write, shaped by `Prefer: return`. */
export async function writeResponse(svc: Services, req: FhirRequest, status: number, v: StoredVersion, message: string, warnings: Issue[] = []): Promise<FhirResponse> {
  const headers = versionHeaders(v, req.baseUrl, status === 201 || req.method !== 'DELETE');
  if (req.prefer.return === 'minimal') return { status, headers };
  if (req.prefer.return === 'OperationOutcome') return { status, headers, body: warnings.length ? operationOutcome([...informational(message).issue.map((i) => ({ severity: i.severity, code: i.code, diagnostics: i.diagnostics! })), ...warnings]) : informational(message) };
  // the resource goes back as willShow lets it (masked, or not at all)
  const shown = v.json ? await svc.hooks.show(req, v) : undefined;
  return shown?.json ? { status, headers, raw: shown.json } : { status, headers };
}

/**
 * A version a read or vread is to show: 404 (as for an unknown one) when the token may not see it
 * (the policy) or a willShow consumer keeps it unseen; else the version as it may be shown.
 */
async function shownVersion(svc: Services, req: FhirRequest, v: StoredVersion): Promise<StoredVersion> {
  await ensureVisible(svc, req.access, v, req.baseUrl);
  const shown = await svc.hooks.show(req, v);
  if (!shown) throw notFound(`${v.type}/${v.id} is not known`);
  return shown;
}

/** The search criteria of a conditional interaction's query (what shapes the answer is not one). */
const criteriaOf = (query: [string, string][]) => query.filter(([k]) => k !== '_format' && k !== '_pretty');

/** Runs a type-level query for a conditional interaction: criteria are required and always strict. */
export async function conditionalMatches(svc: Services, req: FhirRequest, type: string, query: [string, string][]): Promise<StoredVersion[]> {
  const criteria = criteriaOf(query);
  if (criteria.length === 0) throw badRequest(`A conditional ${req.method} needs search criteria`);
  const { plan } = parseSearch(svc.registry, type, criteria, { strict: true, defaultCount: 2, maxCount: 2, baseUrl: req.baseUrl });
  // criteria that all drop out (empty values, result parameters) would match every resource
  if (plan.scopes.every((s) => s.conditions.length === 0)) throw badRequest(`A conditional ${req.method} needs search criteria that select resources; ${criteria.map(([k, v]) => `${k}=${v}`).join('&')} selects none`);
  // a confined token only ever matches what it could search
  plan.scopes = restrictScopes(svc, req.access, plan.scopes);
  if (plan.scopes.length === 0) return [];
  plan.count = 2;
  plan.total = 'none';
  plan.cursor = undefined;
  return (await svc.store.search(plan)).items;
}

/** The decoded segments of a URL path; 400 when one is not correctly percent-encoded. */
export function pathSegments(path: string, expression?: string): string[] {
  try {
    return path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    throw new FhirError(400, 'invalid', 'The URL path is not correctly percent-encoded', expression);
  }
}

export function parseQueryString(q: string): [string, string][] {
  const s = q.replace(/^[^?]*\?/, '');
  return [...new URLSearchParams(s).entries()];
}

/** How long a claim on conditional criteria may be held (a server that stops while holding one). */
const CLAIM_MS = 30_000;
/** How long a conditional interaction waits for another one with the same criteria. */
const CLAIM_WAIT_MS = 5_000;

/**
 * Runs a conditional interaction's "match, then write" with no other one of the same type and
 * criteria in between, on this server or another sharing the store: two conditional creates of the
 * same Patient sent at once would otherwise both find none and both create it. The other one waits.
 */
async function exclusively<T>(svc: Services, type: string, criteria: [string, string][], fn: () => Promise<T>): Promise<T> {
  // not for a transaction's entries: SQLite's transaction already keeps every other writer out (and
  // a claim, outside it, would wait for it); on MongoDB two transactions can still race here
  if (svc.store.inTransaction) return fn();
  const canonical = criteriaOf(criteria).sort(([a, x], [b, y]) => a.localeCompare(b) || x.localeCompare(y)).map(([k, v]) => `${k}=${v}`).join('&');
  const key = `conditional:${type}:${createHash('sha256').update(canonical).digest('base64url')}`;
  const deadline = Date.now() + CLAIM_WAIT_MS;
  for (let pause = 2; !(await svc.store.claimState(key, 1, { expiresAt: Date.now() + CLAIM_MS })); pause = Math.min(pause * 2, 50)) {
    if (Date.now() > deadline) throw new FhirError(409, 'conflict', `Another conditional write of ${type} with the same criteria is still running; try again`);
    await new Promise((r) => setTimeout(r, pause));
  }
  try {
    return await fn();
  } finally {
    await svc.store.setState(key, null);
  }
}

export async function create(svc: Services, req: FhirRequest, type: string): Promise<FhirResponse> {
  const body = resourceBody(svc, req.body, type);
  if (req.ifNoneExist === undefined) return createNew(svc, req, type, body);
  const criteria = parseQueryString(req.ifNoneExist);
  return exclusively(svc, type, criteria, async () => {
    const matches = await conditionalMatches(svc, req, type, criteria);
    if (matches.length > 1) throw preconditionFailed(`If-None-Exist: several ${type} resources match the criteria`);
    if (matches.length === 1) return writeResponse(svc, req, 200, matches[0], `${type}/${matches[0].id} already exists; nothing was created`);
    return createNew(svc, req, type, body);
  });
}

async function createNew(svc: Services, req: FhirRequest, type: string, body: Resource): Promise<FhirResponse> {
  const id = req.assignedId ?? randomUUID();
  const warnings: Issue[] = [];
  const guard = await guardOf(svc, req, 'c', type, id);
  const checked = checkWriteOf(svc, req, guard, stamp(body, id, 1, Date.now()));
  const result = await uniquely(() => body, () =>
    write(svc, req, type, id, (current, next) => {
      if (current) throw new FhirError(409, 'duplicate', `${type}/${id} already exists`);
      return { resource: stamp(body, id, next.versionId, next.lastUpdated), index: checked.index };
    }),
  );
  warnings.push(...checked.warnings);
  return writeResponse(svc, req, 201, result.version, `Created ${type}/${id}`, warnings);
}

export async function read(svc: Services, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  const stored = await svc.store.read(type, id);
  if (!stored) throw notFound(`${type}/${id} is not known`);
  const v = await shownVersion(svc, req, stored);
  if (v.deleted) throw new FhirError(410, 'deleted', `${type}/${id} was deleted`, undefined, { ETag: etag(v.versionId), 'Last-Modified': httpDate(v.lastUpdated) });
  const headers = versionHeaders(v, req.baseUrl, false);
  if (req.ifNoneMatch !== undefined && versionOfEtag(req.ifNoneMatch) === String(v.versionId)) return { status: 304, headers };
  if (req.ifModifiedSince !== undefined) {
    const since = Date.parse(req.ifModifiedSince);
    if (!Number.isNaN(since) && Math.floor(v.lastUpdated / 1000) * 1000 <= since) return { status: 304, headers };
  }
  return { status: 200, headers, raw: v.json };
}

export async function vread(svc: Services, req: FhirRequest, type: string, id: string, vid: string): Promise<FhirResponse> {
  const n = Number(vid);
  const stored = /^\d+$/.test(vid) ? await svc.store.vread(type, id, n) : undefined;
  if (!stored) throw notFound(`${type}/${id} has no version ${vid}`);
  const v = await shownVersion(svc, req, stored);
  if (v.deleted) throw new FhirError(410, 'deleted', `Version ${vid} of ${type}/${id} is a deletion`, undefined, { ETag: etag(v.versionId) });
  return { status: 200, headers: versionHeaders(v, req.baseUrl, false), raw: v.json };
}

export async function update(svc: Services, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  const body = updateBody(svc, req.body, type, id);
  const warnings: Issue[] = [];
  const guard = await guardOf(svc, req, 'u', type, id);
  const checked = checkWriteOf(svc, req, guard, stamp(body, id, 1, Date.now()));
  const result = await uniquely(() => body, () =>
    write(svc, req, type, id, (current, next) => {
      guard.existing(current);
      checkIfMatch(req, current, `${type}/${id}`);
      return { resource: stamp(body, id, next.versionId, next.lastUpdated), index: checked.index };
    }),
  );
  warnings.push(...checked.warnings);
  const created = !result.previous || result.previous.deleted;
  return writeResponse(svc, req, created ? 201 : 200, result.version, `${created ? 'Created' : 'Updated'} ${type}/${id}`, warnings);
}

export async function conditionalUpdate(svc: Services, req: FhirRequest, type: string): Promise<FhirResponse> {
  return exclusively(svc, type, req.query, () => conditionalUpdateNow(svc, req, type));
}

async function conditionalUpdateNow(svc: Services, req: FhirRequest, type: string): Promise<FhirResponse> {
  const body = resourceBody(svc, req.body, type);
  const matches = await conditionalMatches(svc, req, type, req.query);
  if (matches.length > 1) throw preconditionFailed(`Several ${type} resources match the criteria of the conditional update`);
  if (matches.length === 1) {
    const id = matches[0].id;
    if (body.id !== undefined && body.id !== id) throw badRequest(`The id in the body (${body.id}) is not the id of the matching resource (${id})`, `${type}.id`);
    return update(svc, { ...req, body: { ...body, id } }, type, id);
  }
  if (body.id !== undefined) {
    const existing = await svc.store.read(type, body.id);
    // one the token may not see is left to update(), which answers as for an unknown resource
    if (existing && !existing.deleted && (await visible(svc, req.access, [existing], 'r', req.baseUrl)).length > 0) {
      throw new FhirError(409, 'conflict', `${type}/${body.id} exists but does not match the criteria of the conditional update`);
    }
    return update(svc, req, type, body.id);
  }
  return createNew(svc, req, type, body);
}

function pointerToFhirPath(type: string, pointer: string): string {
  return [type, ...pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))]
    .map((p, i) => (i > 0 && /^\d+$/.test(p) ? `[${p}]` : i > 0 ? `.${p}` : p))
    .join('');
}

/** Applies a JSON Patch document to the current content; errors name the operation and the element. */
export function applyJsonPatch(type: string, current: Resource, ops: unknown): Resource {
  if (!Array.isArray(ops)) throw badRequest('A JSON Patch document must be an array of operations');
  let invalid: jsonpatch.JsonPatchError | undefined;
  try {
    invalid = jsonpatch.validate(ops as jsonpatch.Operation[], current);
  } catch (e) {
    // what the library throws rather than reports: a path through __proto__, a move into its own child
    throw new FhirError(e instanceof TypeError && /__proto__/.test(e.message) ? 400 : 422, 'processing', `JSON Patch could not be applied: ${(e as Error).message.split('\n')[0].split('. ')[0]}`);
  }
  if (invalid) {
    const i = invalid.index ?? 0;
    const op = ops[i] as { path?: string } | undefined;
    const where = op?.path && typeof op.path === 'string' ? pointerToFhirPath(type, op.path) : undefined;
    const status = invalid.name === 'TEST_OPERATION_FAILED' || invalid.name === 'OPERATION_PATH_UNRESOLVABLE' || invalid.name === 'OPERATION_FROM_UNRESOLVABLE' ? 422 : 400;
    throw new FhirError(status, status === 422 ? 'processing' : 'invalid', `JSON Patch operation ${i} (${(ops[i] as { op?: string })?.op ?? '?'}) failed: ${invalid.message.split('\n')[0]}`, where);
  }
  const id = current.id;
  let patched: Resource;
  try {
    patched = jsonpatch.applyPatch(current, ops as jsonpatch.Operation[], false, true).newDocument as Resource;
  } catch (e) {
    throw new FhirError(422, 'processing', `JSON Patch could not be applied: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof patched !== 'object' || patched === null || patched.resourceType !== type) throw new FhirError(422, 'processing', 'A patch may not change the resourceType', `${type}.resourceType`);
  if (patched.id !== id) throw new FhirError(422, 'processing', 'A patch may not change the id', `${type}.id`);
  return patched;
}

export async function patch(svc: Services, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  if (req.bodyKind !== 'json-patch') throw new FhirError(415, 'not-supported', 'PATCH takes a JSON Patch document (Content-Type: application/json-patch+json); FHIRPath Patch is not supported');
  const warnings: Issue[] = [];
  const guard = await guardOf(svc, req, 'u', type, id);
  let patched: Resource | undefined;
  const result = await uniquely(() => patched, () =>
    write(svc, req, type, id, (current, next) => {
      if (!current) throw notFound(`${type}/${id} is not known`);
      guard.existing(current);
      if (current.deleted) throw new FhirError(410, 'deleted', `${type}/${id} was deleted`);
      checkIfMatch(req, current, `${type}/${id}`);
      patched = applyJsonPatch(type, JSON.parse(current.json!) as Resource, req.body);
      resourceBody(svc, patched, type);
      return indexed(svc, req, guard, stamp(patched, id, next.versionId, next.lastUpdated), warnings);
    }),
  );
  return writeResponse(svc, req, 200, result.version, `Patched ${type}/${id}`, warnings);
}

export async function conditionalPatch(svc: Services, req: FhirRequest, type: string): Promise<FhirResponse> {
  const matches = await conditionalMatches(svc, req, type, req.query);
  if (matches.length === 0) throw notFound(`No ${type} matches the criteria of the conditional patch`);
  if (matches.length > 1) throw preconditionFailed(`Several ${type} resources match the criteria of the conditional patch`);
  return patch(svc, req, type, matches[0].id);
}

function deleteResponse(req: FhirRequest, result: WriteResult | undefined, message: string): FhirResponse {
  const headers: Record<string, string> = result && !result.unchanged ? { ETag: etag(result.version.versionId) } : {};
  if (req.prefer.return === 'OperationOutcome') return { status: 200, headers, body: informational(message) };
  return { status: 204, headers };
}

/** What a delete checks of the current version; remove and $validate in delete mode both run it. */
export function checkDeleteOf(guard: WriteGuard, type: string, id: string, current: StoredVersion | undefined): asserts current is StoredVersion {
  if (!current) throw notFound(`${type}/${id} is not known`);
  guard.existing(current);
}

export async function remove(svc: Services, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  const guard = await guardOf(svc, req, 'd', type, id);
  const result = await write(svc, req, type, id, (current) => {
    checkDeleteOf(guard, type, id, current);
    checkIfMatch(req, current, `${type}/${id}`);
    if (current.deleted) return null;
    return { resource: null, index: emptyIndex() };
  });
  return deleteResponse(req, result, result.unchanged ? `${type}/${id} was already deleted` : `Deleted ${type}/${id}`);
}

export async function conditionalDelete(svc: Services, req: FhirRequest, type: string): Promise<FhirResponse> {
  const matches = await conditionalMatches(svc, req, type, req.query);
  if (matches.length > 1) throw preconditionFailed(`Several ${type} resources match the criteria of the conditional delete; this server deletes one at a time`);
  if (matches.length === 0) return deleteResponse(req, undefined, `No ${type} matched the criteria; nothing was deleted`);
  return remove(svc, req, type, matches[0].id);
}

const HISTORY_PARAMS = new Set(['_count', '_since', '_cursor', '_format', '_pretty']);

export async function history(svc: Services, req: FhirRequest, type?: string, id?: string): Promise<FhirResponse> {
  let since: number | undefined;
  let cursor: SearchPlan['cursor'];
  let count = svc.config.defaultCount;
  for (const [k, v] of req.query) {
    if (k === '_since') {
      const r = dateRange(v);
      if (!r) throw badRequest(`_since must be an instant such as 2024-01-31T10:00:00Z, got "${v}"`);
      since = r.low;
    } else if (k === '_count') count = parseCount(v, { defaultCount: svc.config.defaultCount, maxCount: svc.config.maxCount });
    else if (k === '_cursor') {
      const m = /^(next|prev):(.+)$/.exec(v);
      if (!m) throw badRequest('_cursor is not a paging position this server issued');
      cursor = { direction: m[1] as 'next' | 'prev', position: m[2] };
    } else if (!HISTORY_PARAMS.has(k) && req.prefer.handling === 'strict') throw new FhirError(400, 'not-supported', `History does not support the parameter "${k}" (Prefer: handling=strict)`);
  }
  if (type && id) {
    const current = await svc.store.read(type, id);
    if (!current) throw notFound(`${type}/${id} is not known`);
    await shownVersion(svc, req, current);
  }
  const page = await svc.store.history({ type, id, since, count, cursor });
  // a confined token sees the versions it may see, each judged on its own content (a page may then
  // hold fewer entries), and no count of the versions it may not see
  if (req.access && isConfined(req.access)) page.items = await visible(svc, req.access, page.items, id ? 'r' : 's', req.baseUrl);
  page.items = await svc.hooks.willShow(req, page.items);
  // the total is only known (and only given) when the first page holds every version; a confined token's, of what it may see
  page.total = !cursor && !page.next ? page.items.length : undefined;
  const self = [req.baseUrl, type, id, '_history'].filter(Boolean).join('/');
  const kept = req.query.filter(([k]) => k === '_since');
  return { status: 200, headers: {}, raw: historyBundle(req.baseUrl, self, kept, count, page) };
}

