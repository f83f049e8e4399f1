import { randomUUID } from 'node:crypto';
import type { Resource } from 'fhir/r4';
import { badRequest, FhirError, informational, notFound, operationOutcome, preconditionFailed, type Issue } from '../outcome';
import { ensureVisible, visible, writeGuard, type WriteGuard } from '../policy/access';
import { emptyIndex, extractIndex, type IndexEntries } from '../search/extract';
import { UniqueKeyError } from '../store/errors';
import type { Mutator, StoredVersion, WriteInput, WriteResult } from '../store/types';
import { conditionalMatches, exclusively } from './conditional';
import type { FhirRequest, FhirResponse, Services } from './context';
import { applyJsonPatch } from './json-patch';
import { checkId, etag, httpDate, resourceBody, stamp, versionHeaders, versionOfEtag } from './resource';
import { uniqueIdentifierError } from './unique-identifiers';
import { parseQueryString } from './url';

/** The interactions on resources: create, read, vread, update, patch, delete, and their conditional forms. */

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
export async function shownVersion(svc: Services, req: FhirRequest, v: StoredVersion): Promise<StoredVersion> {
  await ensureVisible(svc, req.access, v, req.baseUrl);
  const shown = await svc.hooks.show(req, v);
  if (!shown) throw notFound(`${v.type}/${v.id} is not known`);
  return shown;
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
