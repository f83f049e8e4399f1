/**
 * SMART on FHIR scopes (App Launch 2.x): v1 (`patient/Observation.read`, `user/*.write`) and v2
 * (`patient/Observation.rs`, `system/*.cruds`), with an optional query restricting v2 scopes
 * (`patient/Observation.rs?category=vital-signs`).
 */

export type Permission = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeContext = 'patient' | 'user' | 'system';

export interface ResourceScope {
  /** the scope as written */
  text: string;
  context: ScopeContext;
  /** a resource type or `*` */
  type: string;
  permissions: Set<Permission>;
  /** search parameters that the resources must match (granular v2 scopes) */
  query?: [string, string][];
}

const ORDER: Permission[] = ['c', 'r', 'u', 'd', 's'];
const V1: Record<string, Permission[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ['c', 'r', 'u', 'd', 's'] };
const SCOPE_RE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(?:\?(.+))?$/;

/** Scopes that are not about resources: identity, launch context, refresh tokens. */
export const NON_RESOURCE_SCOPES = ['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'offline_access', 'online_access'];

/** A resource scope, or undefined when the text is not one (or is malformed). */
export function parseScope(text: string): ResourceScope | undefined {
  const m = SCOPE_RE.exec(text);
  if (!m) return undefined;
  const [, context, type, perms, query] = m;
  let permissions: Permission[];
  if (V1[perms]) {
    if (query !== undefined) return undefined; // queries are a v2 feature
    permissions = V1[perms];
  } else {
    // v2: a non-empty subsequence of c r u d s, in that order
    let at = 0;
    permissions = [];
    for (const ch of perms) {
      const i = ORDER.indexOf(ch as Permission, at);
      if (i < 0) return undefined;
      permissions.push(ch as Permission);
      at = i + 1;
    }
    if (permissions.length === 0) return undefined;
  }
  const scope: ResourceScope = { text, context: context as ScopeContext, type, permissions: new Set(permissions) };
  if (query !== undefined) {
    const q = [...new URLSearchParams(query).entries()];
    if (q.length === 0) return undefined;
    scope.query = q;
  }
  return scope;
}

export function parseScopes(scope: string | undefined): ResourceScope[] {
  return (scope ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(parseScope)
    .filter((s): s is ResourceScope => s !== undefined);
}

const sameQuery = (a: [string, string][] | undefined, b: [string, string][] | undefined) =>
  JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort());

/**
 * Whether `allowed` grants at least what `wanted` asks: same context, same or wildcard type, a
 * superset of the permissions, and no query or a query that `wanted` also carries (a granular scope
 * is narrower than the same scope without query).
 */
export function covers(allowed: ResourceScope, wanted: ResourceScope): boolean {
  if (allowed.context !== wanted.context) return false;
  if (allowed.type !== '*' && allowed.type !== wanted.type) return false;
  for (const p of wanted.permissions) if (!allowed.permissions.has(p)) return false;
  if (!allowed.query) return true;
  if (!wanted.query) return false;
  const w = new Set(wanted.query.map(([k, v]) => `${k}=${v}`));
  return allowed.query.every(([k, v]) => w.has(`${k}=${v}`)) || sameQuery(allowed.query, wanted.query);
}

/**
 * The requested scopes a client may receive, given the scopes it is registered for: resource scopes
 * that one registered scope covers, and the non-resource scopes it is registered for. The rest is
 * returned in `refused`.
 */
export function grantable(requested: string, registered: string): { granted: string[]; refused: string[] } {
  const reg = registered.split(/\s+/).filter(Boolean);
  const regResource = parseScopes(registered);
  const granted: string[] = [];
  const refused: string[] = [];
  for (const s of new Set(requested.split(/\s+/).filter(Boolean))) {
    const rs = parseScope(s);
    if (rs ? regResource.some((a) => covers(a, rs)) : reg.includes(s) && NON_RESOURCE_SCOPES.includes(s)) granted.push(s);
    else refused.push(s);
  }
  return { granted, refused };
}

const PERMISSION_FR: Record<Permission, string> = { c: 'créer', r: 'lire', u: 'modifier', d: 'supprimer', s: 'rechercher' };

/** A French description of a scope, for the consent page. */
export function describeScope(text: string, typeLabel: (type: string) => string = (t) => t): string {
  const fixed: Record<string, string> = {
    openid: 'Vous identifier auprès de l’application',
    fhirUser: 'Connaître votre identité (profil patient ou professionnel)',
    profile: 'Connaître votre nom',
    launch: 'Recevoir le contexte de lancement (patient en cours)',
    'launch/patient': 'Savoir quel dossier patient est ouvert',
    offline_access: 'Garder l’accès quand vous n’utilisez pas l’application (jeton de rafraîchissement longue durée)',
    online_access: 'Garder l’accès pendant votre session',
  };
  if (fixed[text]) return fixed[text];
  const s = parseScope(text);
  if (!s) return text;
  const perms = ORDER.filter((p) => s.permissions.has(p)).map((p) => PERMISSION_FR[p]);
  const what = s.type === '*' ? 'toutes vos données de santé' : typeLabel(s.type);
  const whose = s.context === 'patient' ? 'de votre dossier' : s.context === 'user' ? 'des dossiers auxquels vous avez accès' : 'de tous les dossiers';
  const filter = s.query ? ` (seulement ${s.query.map(([k, v]) => `${k} = ${v}`).join(', ')})` : '';
  return `${perms.join(', ').replace(/^./, (c) => c.toUpperCase())} : ${what} ${whose}${filter}`;
}
