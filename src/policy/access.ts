/**
 * Who may do what to which resource. Three steps, in this order, for every FHIR interaction:
 *
 * 1. the scope check (`require`): the token's scopes must grant the interaction's permission on
 *    the resource type (create c, read/vread r, update/patch u, delete d, search s);
 * 2. the confinement of `patient/` scopes to the token's patient compartment and of granular scopes
 *    to their query (`restriction`): for searches, conditions added to every scope of the plan and to
 *    every chained target and `_has` source in it (`restrictScopes`), applied by the store, never by
 *    scanning resources; for what is shown by id (read, vread, history, includes), the same
 *    conditions judged on each version's own content (`visible`); for writes, the resource as it is
 *    and as it will be (`writeGuard`);
 * 3. the patient's own access rules (Consent, masking, emergency access: a later issue) plug in as
 *    hook consumers (src/fhir/hooks.ts: willShow, beforeWrite) registered with the services; they
 *    see what steps 1 and 2 let through and may only narrow it.
 *
 * Every answer is a decision (src/policy/decision.ts) naming the rule that decided: an allow, or a
 * Refusal (the FHIR error the client gets) carrying its deny.
 *
 * The scope is a ceiling, not a grant: step 3 may refuse what the scopes allow.
 */
import type { Resource } from 'fhir/r4';
import { FhirError } from '../outcome';
import { allow, refuse, type Decision, type Refusal } from './decision';
import { compartmentCondition, compartmentLinks, patientCompartmentParams } from '../search/compartment';
import { extractIndex, type IndexEntries } from '../search/extract';
import { matchesAll, paramsOf, type ScopeLookup } from '../search/match';
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

/** A 403 for `rule` (the token's scopes unless said otherwise), carrying its decision. */
export function forbidden(message: string, rule = 'scope'): Refusal {
  return refuse(rule, message);
}

/** The token's scopes that grant `perm` on `type`, usable with this token (a patient/ scope needs a patient context). */
function matching(access: Access, perm: Permission, type: string): ResourceScope[] {
  return access.scopes.filter((s) => (s.type === '*' || s.type === type) && s.permissions.has(perm) && (s.context !== 'patient' || access.patient !== undefined));
}

export function allows(access: Access | undefined, perm: Permission, type: string): boolean {
  return access === undefined || matching(access, perm, type).length > 0;
}

/**
 * Step 1: the scope check: the decision that allows it (the scope that grants it), or a refusal.
 * `access` undefined is the server itself (background jobs), never an HTTP request.
 */
export function requirePermission(access: Access | undefined, perm: Permission, type: string): Decision {
  if (!access) return allow('server', 'the server’s own work');
  const granting = matching(access, perm, type);
  if (granting.length > 0) return allow('scope', `${PERMISSION_NAME[perm]} on ${type} granted by ${granting.map((g) => g.text).join(', ')}`);
  const patientScopes = access.scopes.some((s) => s.context === 'patient' && (s.type === '*' || s.type === type) && s.permissions.has(perm));
  if (patientScopes) throw forbidden(`The token has patient/ scopes for ${type} but no patient context`);
  throw forbidden(`The token's scopes do not allow ${PERMISSION_NAME[perm]} on ${type} (it has: ${access.scope || 'no scope'})`);
}

/** Whether some of the token's scopes confine it (a patient/ scope, a granular query): what it is shown is then judged one by one. */
export function isConfined(access: Access): boolean {
  return access.scopes.some((s) => s.context === 'patient' || s.query !== undefined);
}

/** Only a system/ token with every permission on every type (the administrator's) passes. */
export function requireAdministrator(access: Access | undefined, what: string): Decision {
  if (!access) return allow('server', 'the server’s own work');
  if (!access.scopes.some((s) => s.context === 'system' && s.type === '*' && ['c', 'r', 'u', 'd', 's'].every((p) => s.permissions.has(p as Permission)))) {
    throw forbidden(`${what} needs a system/*.cruds token`, 'administrator');
  }
  return allow('administrator', `${what} by the administrator's system/*.cruds token`);
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
  // user/ and system/ scopes without query: nothing more (the patient's rules plug in as hook consumers)
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
  if (alternatives.some((a) => a.length !== 1)) throw forbidden(`The token holds several granular scopes for ${type} with more than one criterion each; this server combines granular scopes of one criterion only`, 'granular-scope');
  return [...conditions, { kind: 'any', conditions: alternatives.map((a) => a[0]) }];
}

/** The restriction of `type` for a search nested in another one (a chained target, a `_has` source): NOTHING when the token may not search it. */
function nestedRestriction(svc: PolicyServices, access: Access, type: string): Condition[] {
  if (!allows(access, 's', type)) return [NOTHING];
  const extra = restriction(svc, access, 's', type);
  return extra.includes(NOTHING) ? [NOTHING] : extra;
}

/**
 * A condition whose chained targets and `_has` sources are searched under the same restrictions as a
 * direct search of their type: a chain through another patient's resource matches nothing.
 */
function confine(svc: PolicyServices, access: Access, c: Condition): Condition {
  switch (c.kind) {
    case 'any':
    case 'all':
      return { ...c, conditions: c.conditions.map((x) => confine(svc, access, x)) };
    case 'chain': {
      const byType = c.targetTypes.map((t): Condition => ({ kind: 'chain', param: c.param, targetTypes: [t], conditions: [...c.conditions.map((x) => confine(svc, access, x)), ...nestedRestriction(svc, access, t)] }));
      return byType.length === 1 ? byType[0] : { kind: 'any', conditions: byType };
    }
    case 'has':
      return { ...c, conditions: [...c.conditions.map((x) => confine(svc, access, x)), ...nestedRestriction(svc, access, c.sourceType)] };
    default:
      return c;
  }
}

/**
 * Adds the token's restriction to every scope of a search plan, and to every chained target and
 * `_has` source inside it; the types the token may not search are left out.
 */
export function restrictScopes(svc: PolicyServices, access: Access | undefined, scopes: Scope[], perm: 'r' | 's' = 's'): Scope[] {
  if (!access) return scopes;
  const out: Scope[] = [];
  for (const s of scopes) {
    if (!allows(access, perm, s.type)) continue;
    const extra = restriction(svc, access, perm, s.type);
    if (extra.includes(NOTHING)) continue; // a type outside the patient compartment
    out.push({ type: s.type, conditions: [...s.conditions.map((c) => confine(svc, access, c)), ...extra] });
  }
  return out;
}

/**
 * The version whose content decides who may see or touch a resource at that point of its history:
 * the version itself, or for a deletion (which has no content) the last live version before it.
 */
export async function decidingVersion(store: ResourceStore, v: StoredVersion): Promise<StoredVersion | undefined> {
  let at: StoredVersion | undefined = v;
  while (at?.deleted && at.versionId > 1) at = await store.vread(at.type, at.id, at.versionId - 1);
  return at && !at.deleted ? at : undefined;
}

/** Live resources of a scope, as the store answers them: how chains and `_has` in a restriction are judged. */
function storeLookup(store: ResourceStore): ScopeLookup {
  return async (scope, ids) => {
    const conditions: Condition[] = ids ? [{ kind: 'id', ids }, ...scope.conditions] : scope.conditions;
    const page = await store.search({ scopes: [{ type: scope.type, conditions }], sort: [], count: ids?.length ?? 1, total: 'none' });
    return page.items.map((v) => v.id);
  };
}

/**
 * Step 2 for everything shown (read, vread, history, includes): the versions the token may see.
 * Each version is judged on its own content (a deletion on the last live version before it), with
 * the same conditions a search applies, so an earlier version of a resource that has since left
 * (or entered) the token's reach is shown exactly when it was within it.
 */
export async function visible(svc: PolicyServices, access: Access | undefined, versions: StoredVersion[], perm: 'r' | 's' = 'r', baseUrl?: string): Promise<StoredVersion[]> {
  if (!access || versions.length === 0) return versions;
  const byType = new Map<string, Condition[] | undefined>();
  const lookup = storeLookup(svc.store);
  const out: StoredVersion[] = [];
  for (const v of versions) {
    if (!byType.has(v.type)) byType.set(v.type, allows(access, perm, v.type) ? restriction(svc, access, perm, v.type) : undefined);
    const conditions = byType.get(v.type);
    if (!conditions || conditions.includes(NOTHING)) continue;
    if (conditions.length === 0) {
      out.push(v);
      continue;
    }
    const judged = await decidingVersion(svc.store, v);
    if (!judged?.json) continue;
    const index = extractIndex(svc.registry, JSON.parse(judged.json) as Resource, baseUrl, paramsOf(conditions));
    if (await matchesAll(conditions, { type: v.type, id: v.id, lastUpdated: judged.lastUpdated, index }, lookup)) out.push(v);
  }
  return out;
}

/** Throws 404 (the same answer as for an unknown resource) when the token may not see this version. */
export async function ensureVisible(svc: PolicyServices, access: Access | undefined, v: StoredVersion, baseUrl?: string, perm: 'r' | 's' = 'r'): Promise<void> {
  if ((await visible(svc, access, [v], perm, baseUrl)).length > 0) return;
  const rule = access?.scopes.some((s) => s.context === 'patient') ? 'compartment' : 'granular-scope';
  throw refuse(rule, `${v.type}/${v.id} is not known`, true);
}

/**
 * Step 2 for writes. The checks run inside the store's atomic section (pure, on the version the
 * store hands over); what they need from before (the last live version of a deleted resource) is
 * read by writeGuard first.
 */
export interface WriteGuard {
  /** 404 when the token may not touch the resource as it is now: a deleted one is judged on its last live version */
  existing(current: StoredVersion | undefined): void;
  /** 403 when the new content would reach beyond the token's patient */
  next(type: string, id: string, index: IndexEntries): void;
}

const FREE: WriteGuard = { existing: () => undefined, next: () => undefined };

/**
 * The checks of a write with `perm` on `type/id`: the permission (403), and for a `patient/` token,
 * that the resource as it is (or was, if deleted) is in its patient's compartment (404 otherwise,
 * as for an unknown resource) and that every compartment link of the new content points to its
 * patient (403). Granular scopes with a query grant reads and searches only.
 */
export async function writeGuard(svc: PolicyServices, access: Access | undefined, perm: 'c' | 'u' | 'd', type: string, id: string, baseUrl?: string): Promise<WriteGuard> {
  if (!access) return FREE;
  const scopes = matching(access, perm, type).filter((s) => !s.query);
  if (scopes.length === 0) {
    if (matching(access, perm, type).length > 0) throw forbidden(`Granular scopes (with a query) do not allow ${PERMISSION_NAME[perm]}; ask for ${access.scopes.find((s) => s.query)?.context ?? 'patient'}/${type}.${perm} without query`, 'granular-scope');
    requirePermission(access, perm, type);
  }
  if (scopes.some((s) => s.context !== 'patient')) return FREE;
  const own = `Patient/${access.patient!}`;
  const params = new Set(patientCompartmentParams(type));
  const linksOf = (v: StoredVersion) => compartmentLinks(type, id, extractIndex(svc.registry, JSON.parse(v.json!) as Resource, baseUrl, params));
  // a deleted resource is judged on its last live version, read now: the atomic section checks it is still the one deleted
  const before = perm === 'c' ? undefined : await svc.store.read(type, id);
  const lastLive = before?.deleted ? await decidingVersion(svc.store, before) : undefined;
  const lastLiveLinks = lastLive ? linksOf(lastLive) : [];
  return {
    existing(current) {
      if (!current) return;
      if (current.deleted && current.versionId !== before?.versionId) throw new FhirError(409, 'conflict', `${type}/${id} changed while this request was being checked; send it again`);
      const links = current.deleted ? lastLiveLinks : linksOf(current);
      if (!links.includes(own)) throw refuse('compartment', `${type}/${id} is not known`, true);
    },
    next(t, i, index) {
      const links = compartmentLinks(t, i, index);
      const foreign = links.filter((l) => l !== own);
      if (links.length === 0) throw forbidden(`A patient/ token writes only in its patient's compartment: this ${t} would not be in the compartment of ${own}`, 'compartment-link');
      if (foreign.length > 0) throw forbidden(`A patient/ token writes only resources of its own patient: this ${t} also points to ${foreign.join(', ')}`, 'compartment-link');
    },
  };
}
