/**
 * Who may do what to which resource. Three steps, in this order, for every FHIR interaction:
 *
 * 1. the scope check (`require`): the token's scopes must grant the interaction's permission on
 *    the resource type (create c, read/vread r, update/patch u, delete d, search s);
 * 2. the confinement of `patient/` scopes to the token's patient compartment and of granular scopes
 *    to their query (`restriction`, `visible`, `checkWrite`), applied by the store (a search plan
 *    condition), never by scanning resources;
 * 3. the patient's own access rules (`patientRules`): a hook, not yet implemented, for the Consent
 *    resources of a later issue. It sees the decision of steps 1 and 2 and may only narrow it.
 *
 * The scope is a ceiling, not a grant: step 3 may refuse what the scopes allow.
 */
import { FhirError } from '../outcome';
import { r4PatientCompartment } from '../r4';
import type { IndexEntries } from '../search/extract';
import { parseSearch } from '../search/parse';
import type { Condition, Scope } from '../search/plan';
import type { SearchParamRegistry } from '../search/registry';
import type { ResourceStore, StoredVersion } from '../store/types';
import { parseScopes, type Permission, type ResourceScope } from './scopes';

/** The caller, as established from a verified access token. */
export interface Access {
  clientId: string;
  /** the token's subject: the account (patient, professional) or the client itself */
  subject: string;
  /** the launch context: the patient the token is about */
  patient?: string;
  /** `Patient/123` or `Practitioner/456` */
  fhirUser?: string;
  /** the resource scopes the token carries */
  scopes: ResourceScope[];
  /** the token's scope claim as issued */
  scope: string;
  /** the token id, for audit */
  jti?: string;
}

/** What policy needs from the services (a structural subset of the FHIR layer's Services). */
export interface PolicyServices {
  store: ResourceStore;
  registry: SearchParamRegistry;
  config: { defaultCount: number; maxCount: number };
  expandValueSet?: (url: string) => { system: string; code: string }[];
}

export function accessFromToken(claims: { client_id: string; sub?: string; scope?: string; patient?: string; fhirUser?: string; jti?: string }): Access {
  return {
    clientId: claims.client_id,
    subject: claims.sub ?? claims.client_id,
    patient: claims.patient,
    fhirUser: claims.fhirUser,
    scopes: parseScopes(claims.scope),
    scope: claims.scope ?? '',
    jti: claims.jti,
  };
}

const PERMISSION_NAME: Record<Permission, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

export function forbidden(message: string): FhirError {
  return new FhirError(403, 'forbidden', message);
}

/** The token's scopes that grant `perm` on `type`, usable with this token (a patient/ scope needs a patient context). */
function matching(access: Access, perm: Permission, type: string): ResourceScope[] {
  return access.scopes.filter((s) => (s.type === '*' || s.type === type) && s.permissions.has(perm) && (s.context !== 'patient' || access.patient !== undefined));
}

export function allows(access: Access | undefined, perm: Permission, type: string): boolean {
  return access === undefined || matching(access, perm, type).length > 0;
}

/** Step 1: the scope check. `access` undefined is the server itself (background jobs), never an HTTP request. */
export function requirePermission(access: Access | undefined, perm: Permission, type: string): void {
  if (!access || matching(access, perm, type).length > 0) return;
  const patientScopes = access.scopes.some((s) => s.context === 'patient' && (s.type === '*' || s.type === type) && s.permissions.has(perm));
  if (patientScopes) throw forbidden(`The token has patient/ scopes for ${type} but no patient context`);
  throw forbidden(`The token's scopes do not allow ${PERMISSION_NAME[perm]} on ${type} (it has: ${access.scope || 'no scope'})`);
}

/** Only a system/ token with every permission on every type (the administrator's) passes. */
export function requireAdministrator(access: Access | undefined, what: string): void {
  if (!access) return;
  if (!access.scopes.some((s) => s.context === 'system' && s.type === '*' && ['c', 'r', 'u', 'd', 's'].every((p) => s.permissions.has(p as Permission)))) {
    throw forbidden(`${what} needs a system/*.cruds token`);
  }
}

/** The compartment parameters of a type in the Patient compartment (empty: not in it). */
export function patientCompartmentParams(type: string): string[] {
  return r4PatientCompartment().resource?.find((r) => r.code === type)?.param ?? [];
}

export function compartmentCondition(type: string, patientId: string): Condition | undefined {
  const byParam: Condition[] = patientCompartmentParams(type).map((p) => ({ kind: 'key', param: p, keys: [`Patient/${patientId}`] }));
  if (type === 'Patient') byParam.push({ kind: 'id', ids: [patientId] });
  if (byParam.length === 0) return undefined;
  return byParam.length === 1 ? byParam[0] : { kind: 'any', conditions: byParam };
}

/** The conditions of a granular scope's query, parsed by the same parser as a search. */
function queryConditions(svc: PolicyServices, type: string, query: [string, string][]): Condition[] {
  const parsed = parseSearch(svc.registry, type, query, { strict: true, defaultCount: svc.config.defaultCount, maxCount: svc.config.maxCount, expandValueSet: svc.expandValueSet });
  return parsed.plan.scopes[0].conditions;
}

/** What never matches: used when a type cannot be in a patient's compartment. */
const NOTHING: Condition = { kind: 'id', ids: [] };

/**
 * Step 2 for reads and searches: the conditions every resource of `type` must also meet, or [] when
 * the token is not confined. Several matching scopes are alternatives (OR); a `patient/` scope
 * confines to the compartment of the token's patient, a query to its matches.
 */
export function restriction(svc: PolicyServices, access: Access | undefined, perm: 'r' | 's', type: string): Condition[] {
  if (!access) return [];
  const scopes = matching(access, perm, type);
  if (scopes.length === 0) throw forbidden(`The token's scopes do not allow ${PERMISSION_NAME[perm]} on ${type}`);
  // user/ and system/ scopes without query: nothing more (the patient's rules plug in at patientRules)
  if (scopes.some((s) => s.context !== 'patient' && !s.query)) return [];
  const confined = scopes.every((s) => s.context === 'patient');
  const conditions: Condition[] = [];
  if (confined) conditions.push(compartmentCondition(type, access.patient!) ?? NOTHING);
  if (scopes.some((s) => !s.query)) {
    // a scope without query of the same confinement covers every query of the others
    if (!confined) throw forbidden(`The token mixes patient/ and user/ or system/ scopes with queries for ${type}; ask for one kind`);
    return conditions;
  }
  const alternatives = scopes.map((s) => queryConditions(svc, type, s.query!));
  if (!confined && scopes.some((s) => s.context === 'patient')) throw forbidden(`The token mixes patient/ and user/ or system/ scopes with queries for ${type}; ask for one kind`);
  if (alternatives.length === 1) return [...conditions, ...alternatives[0]];
  if (alternatives.some((a) => a.length !== 1)) throw forbidden(`The token holds several granular scopes for ${type} with more than one criterion each; this server combines granular scopes of one criterion only`);
  return [...conditions, { kind: 'any', conditions: alternatives.map((a) => a[0]) }];
}

/** Adds the token's restriction to every scope of a search plan; the types the token may not search are left out. */
export function restrictScopes(svc: PolicyServices, access: Access | undefined, scopes: Scope[], perm: 'r' | 's' = 's'): Scope[] {
  if (!access) return scopes;
  const out: Scope[] = [];
  for (const s of scopes) {
    if (!allows(access, perm, s.type)) continue;
    const extra = restriction(svc, access, perm, s.type);
    if (extra.includes(NOTHING)) continue; // a type outside the patient compartment
    out.push({ type: s.type, conditions: [...s.conditions, ...extra] });
  }
  return out;
}

/**
 * Step 2 for reads, history and _include: the versions whose resource the token may see. The test
 * is on the resource's current version, through the store (one search per type): a `patient/`
 * token sees a resource, and its history, while the resource is in its patient's compartment.
 */
export async function visible(svc: PolicyServices, access: Access | undefined, versions: StoredVersion[], perm: 'r' | 's' = 'r'): Promise<StoredVersion[]> {
  if (!access || versions.length === 0) return versions;
  const byType = new Map<string, Set<string>>();
  for (const v of versions) {
    if (!allows(access, perm, v.type)) continue;
    byType.set(v.type, (byType.get(v.type) ?? new Set()).add(v.id));
  }
  const ok = new Set<string>();
  for (const [type, ids] of byType) {
    const conditions = restriction(svc, access, perm, type);
    if (conditions.length === 0) {
      for (const id of ids) ok.add(`${type}/${id}`);
      continue;
    }
    const page = await svc.store.search({ scopes: [{ type, conditions: [{ kind: 'id', ids: [...ids] }, ...conditions] }], sort: [], count: ids.size, total: 'none' });
    for (const v of page.items) ok.add(`${v.type}/${v.id}`);
  }
  return patientRules(access, versions.filter((v) => ok.has(`${v.type}/${v.id}`)));
}

/** Throws 404 (the same answer as for an unknown resource) when the token may not see `type/id`. */
export async function ensureVisible(svc: PolicyServices, access: Access | undefined, type: string, id: string, perm: 'r' | 's' = 'r'): Promise<void> {
  requirePermission(access, perm, type);
  if (!access || restriction(svc, access, perm, type).length === 0) return;
  const probe: StoredVersion = { type, id, versionId: 0, lastUpdated: 0, deleted: false };
  if ((await visible(svc, access, [probe], perm)).length === 0) throw new FhirError(404, 'not-found', `${type}/${id} is not known`);
}

/** Whether index entries put a resource in a patient's compartment. */
function inCompartment(type: string, id: string, index: IndexEntries, patientId: string): boolean {
  if (type === 'Patient') return id === patientId;
  const params = new Set(patientCompartmentParams(type));
  const key = `Patient/${patientId}`;
  return index.keys.some((k) => params.has(k.param) && k.key === key);
}

/**
 * Step 2 for writes, inside the store's atomic section: the permission on the type, and for a
 * confined token, the current version (if any) and the new content (if any) in the compartment.
 * Granular scopes with a query grant reads and searches only: a write needs a scope without query.
 */
export function checkWrite(
  access: Access | undefined,
  perm: 'c' | 'u' | 'd',
  type: string,
  id: string,
  current: IndexEntries | undefined,
  next: IndexEntries | undefined,
): void {
  if (!access) return;
  const scopes = matching(access, perm, type).filter((s) => !s.query);
  if (scopes.length === 0) {
    if (matching(access, perm, type).length > 0) throw forbidden(`Granular scopes (with a query) do not allow ${PERMISSION_NAME[perm]}; ask for ${access.scopes.find((s) => s.query)?.context ?? 'patient'}/${type}.${perm} without query`);
    requirePermission(access, perm, type);
  }
  if (scopes.some((s) => s.context !== 'patient')) return patientRulesForWrite(access, type, id);
  const patientId = access.patient!;
  if (current && !inCompartment(type, id, current, patientId)) throw new FhirError(404, 'not-found', `${type}/${id} is not known`);
  if (next && !inCompartment(type, id, next, patientId)) throw forbidden(`A patient/ token writes only in its patient's compartment: this ${type} would not be in the compartment of Patient/${patientId}`);
  patientRulesForWrite(access, type, id);
}

/**
 * Step 3, the patient's access rules (Consent), for reads. Not implemented yet: it returns what the
 * scopes allowed. The later issue filters `versions` here (and adds conditions in restriction()).
 */
export function patientRules(_access: Access, versions: StoredVersion[]): StoredVersion[] {
  return versions;
}

/** Step 3 for writes: not implemented yet (allows what the scopes allowed). */
export function patientRulesForWrite(_access: Access, _type: string, _id: string): void {}
