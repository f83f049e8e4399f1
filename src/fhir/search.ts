import type { OperationOutcome } from 'fhir/r4';
import { badRequest, FhirError, operationOutcome, type Issue } from '../outcome';
import { r4Elements } from '../r4';
import { compartmentCondition, patientCompartmentTypes } from '../search/compartment';
import { parseSearch, type ParsedSearch, type Summary } from '../search/parse';
import type { Include, Scope } from '../search/plan';
import type { StoredVersion } from '../store/types';
import type { FhirRequest, FhirResponse, Services } from './context';
import { searchBundle, type BundleMatch } from './bundles';
import { forbidden, requirePermission, restrictScopes, visible } from '../policy/access';

const MAX_ITERATIONS = 4;
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };

function parse(svc: Services, req: FhirRequest, type: string, params: [string, string][]): ParsedSearch {
  return parseSearch(svc.registry, type, params, {
    strict: req.prefer.handling === 'strict',
    defaultCount: svc.config.defaultCount,
    maxCount: svc.config.maxCount,
    baseUrl: req.baseUrl,
    expandValueSet: svc.expandValueSet,
    subsumption: svc.subsumption,
  });
}

/** Reference parameters of a type, by code. */
function referenceParams(svc: Services, type: string): string[] {
  return [...svc.registry.forType(type).values()].filter((d) => d.type === 'reference').map((d) => d.code);
}

/** The types that have a reference parameter able to point to `target`. */
function typesReferencing(svc: Services, target: string): { type: string; params: string[] }[] {
  const out: { type: string; params: string[] }[] = [];
  for (const type of svc.resourceTypes) {
    const params = [...svc.registry.forType(type).values()].filter((d) => d.type === 'reference' && (d.targets.length === 0 || d.targets.includes(target))).map((d) => d.code);
    if (params.length) out.push({ type, params });
  }
  return out;
}

const refOf = (v: StoredVersion) => `${v.type}/${v.id}`;

/** The resources _include and _revinclude add to a page, with a cap that is reported, never silent. */
async function included(svc: Services, req: FhirRequest, matches: StoredVersion[], includes: Include[]): Promise<{ resources: StoredVersion[]; capped: boolean }> {
  const MAX_INCLUDED = svc.config.maxIncludes;
  const seen = new Set(matches.map(refOf));
  const out: StoredVersion[] = [];
  let frontier = matches;
  let capped = false;
  for (let round = 0; round < MAX_ITERATIONS && frontier.length > 0 && !capped; round++) {
    const active = includes.filter((i) => round === 0 || i.iterate);
    if (active.length === 0) break;
    const found: StoredVersion[] = [];
    const take = (vs: StoredVersion[]) => {
      for (const v of vs) {
        const key = refOf(v);
        if (seen.has(key)) continue;
        if (out.length + found.length >= MAX_INCLUDED) {
          capped = true;
          return;
        }
        seen.add(key);
        found.push(v);
      }
    };
    for (const inc of active) {
      if (capped) break;
      if (!inc.reverse) {
        const byType = new Map<string, string[]>();
        for (const v of frontier) if (inc.sourceType === '*' || inc.sourceType === v.type || inc.param === '*') byType.set(v.type, [...(byType.get(v.type) ?? []), v.id]);
        for (const [type, ids] of byType) {
          if (inc.sourceType !== type && inc.sourceType !== '*' && !(round === 0 && inc.param === '*')) continue;
          const params = inc.param === '*' ? referenceParams(svc, type) : [inc.param];
          const refs = (await svc.store.referencesOf(type, ids, params)).filter((r) => !seen.has(r) && (!inc.targetType || r.startsWith(`${inc.targetType}/`)));
          take(await svc.store.readMany(refs.map((r) => ({ type: r.slice(0, r.indexOf('/')), id: r.slice(r.indexOf('/') + 1) }))));
        }
      } else {
        const targets = frontier.filter((v) => !inc.targetType || v.type === inc.targetType);
        if (targets.length === 0) continue;
        const targetTypes = new Set(targets.map((v) => v.type));
        const sources =
          inc.sourceType === '*'
            ? [...targetTypes].flatMap((t) => typesReferencing(svc, t))
            : [{ type: inc.sourceType, params: inc.param === '*' ? referenceParams(svc, inc.sourceType) : [inc.param] }];
        take(await svc.store.referencing(sources, targets.map(refOf), MAX_INCLUDED - out.length - found.length + 1));
      }
    }
    // only what the token may see is included, or followed further
    // what the token may see, as willShow lets it
    const shown = await svc.hooks.willShow(req, await visible(svc, req.access, found, 's', req.baseUrl));
    out.push(...shown);
    frontier = shown;
  }
  return { resources: out, capped };
}

/** `_summary` and `_elements`: the resource with only the elements asked for, tagged SUBSETTED. */
function shape(json: string, summary: Summary | undefined, elements: string[] | undefined): string {
  if ((!summary || summary === 'false') && !elements) return json;
  const r = JSON.parse(json) as Record<string, unknown> & { resourceType: string; meta?: { tag?: unknown[] } };
  const { summary: summaryNames, mandatory } = r4Elements(r.resourceType);
  // the element a JSON key belongs to: `_birthDate` is birthDate, `deceasedBoolean` is deceased[x]
  const stem = (key: string) => {
    const k = key.replace(/^_/, '');
    for (let i = k.length - 1; i > 0; i--) if (/[A-Z]/.test(k[i]) && (summaryNames.has(k.slice(0, i)) || mandatory.has(k.slice(0, i)) || elements?.includes(k.slice(0, i)))) return k.slice(0, i);
    return k;
  };
  let keep: (k: string) => boolean;
  if (elements) keep = (k) => elements.includes(stem(k)) || mandatory.has(stem(k));
  else if (summary === 'true') keep = (k) => summaryNames.has(stem(k));
  else if (summary === 'text') keep = (k) => k === 'text' || mandatory.has(stem(k));
  else keep = (k) => k !== 'text'; // data
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (k === 'resourceType' || k === 'id' || k === 'meta' || keep(k)) out[k] = v;
  const meta = { ...((out.meta as Record<string, unknown>) ?? {}) };
  meta.tag = [...((meta.tag as unknown[]) ?? []), SUBSETTED];
  out.meta = meta;
  return JSON.stringify(out);
}

/** `_containedType=container`: the containers of contained matches instead of the contained resources, once each. */
async function withContainers(svc: Services, req: FhirRequest, matches: StoredVersion[], containedType: ParsedSearch['containedType']): Promise<StoredVersion[]> {
  if (containedType !== 'container' || !matches.some((v) => v.container)) return matches;
  const refs = [...new Map(matches.map((v) => (v.container ? [`${v.container.type}/${v.container.id}`, { type: v.container.type, id: v.container.id }] : [refOf(v), { type: v.type, id: v.id }]))).values()];
  const found = new Map((await svc.store.readMany(refs)).map((v) => [refOf(v), v]));
  const containers = refs.map((r) => found.get(`${r.type}/${r.id}`)).filter((v): v is StoredVersion => !!v);
  return svc.hooks.willShow(req, await visible(svc, req.access, containers, 's', req.baseUrl));
}

/** Runs a plan and answers with a searchset Bundle. */
export async function answer(svc: Services, req: FhirRequest, self: string, params: [string, string][], parsed: ParsedSearch, ignored: string[]): Promise<FhirResponse> {
  // the token's confinement (patient compartment, granular scope queries) on every scope of the plan
  const scopes = restrictScopes(svc, req.access, parsed.plan.scopes);
  if (scopes.length === 0) throw forbidden(`The token's scopes do not allow searching ${[...new Set(parsed.plan.scopes.map((s) => s.type))].slice(0, 5).join(', ')}`);
  parsed = { ...parsed, plan: { ...parsed.plan, scopes } };
  const page = await svc.store.search(parsed.plan);
  // what may leave the server (willShow), and from it only, the containers and the includes
  const shown = await svc.hooks.willShow(req, page.items);
  // a first page that holds every match gives its total for free
  if (page.total === undefined && !parsed.plan.cursor && !page.next && parsed.plan.count > 0 && !params.some(([k]) => k === '_total')) page.total = shown.length;
  const matches = await withContainers(svc, req, shown, parsed.containedType);
  const entries: BundleMatch[] = matches.map((v) => ({
    version: v,
    mode: 'match',
    json: shape(v.json!, parsed.summary, parsed.elements),
    fullUrl: v.container ? `${req.baseUrl}/${v.container.type}/${v.container.id}#${v.container.cid}` : undefined,
  }));
  const issues: Issue[] = ignored.map((p) => ({ severity: 'warning', code: 'not-supported', diagnostics: `Search parameter "${p}" is not known to this server and was ignored` }));
  if (parsed.includes.length > 0 && shown.length > 0) {
    const inc = await included(svc, req, shown, parsed.includes);
    entries.push(...inc.resources.map((v) => ({ version: v, mode: 'include' as const, json: v.json! })));
    if (inc.capped) issues.push({ severity: 'warning', code: 'too-costly', diagnostics: `_include/_revinclude matched more than ${svc.config.maxIncludes} resources for this page; only the first ${svc.config.maxIncludes} are included (use a smaller _count)` });
  }
  const outcome: OperationOutcome | undefined = issues.length ? operationOutcome(issues) : undefined;
  const kept = params.filter(([k]) => !ignored.includes(k) && k !== '_cursor' && k !== '_count');
  return { status: 200, headers: {}, raw: searchBundle(req.baseUrl, self, kept, parsed.plan, page, entries, outcome) };
}

export async function typeSearch(svc: Services, req: FhirRequest, type: string, params: [string, string][]): Promise<FhirResponse> {
  const parsed = parse(svc, req, type, params);
  return answer(svc, req, `${req.baseUrl}/${type}`, params, parsed, parsed.ignored);
}

/** `GET Patient/123/Observation?...`: the search, within the patient's compartment. */
export async function compartmentSearch(svc: Services, req: FhirRequest, compartment: string, id: string, type: string, params: [string, string][]): Promise<FhirResponse> {
  if (compartment !== 'Patient') throw new FhirError(400, 'not-supported', `Only the Patient compartment is supported, not ${compartment}`);
  const types = type === '*' ? patientCompartmentTypes(svc.resourceTypes) : [type];
  const scopes: Scope[] = [];
  let first: ParsedSearch | undefined;
  for (const t of types) {
    const inCompartment = compartmentCondition(t, id);
    if (!inCompartment) throw badRequest(`${t} is not in the Patient compartment`);
    const parsed = parse(svc, req, t, params);
    first ??= parsed;
    scopes.push({ type: t, conditions: [inCompartment, ...parsed.plan.scopes[0].conditions] });
  }
  const parsed = { ...first!, plan: { ...first!.plan, scopes } };
  return answer(svc, req, `${req.baseUrl}/Patient/${id}/${type}`, params, parsed, first!.ignored);
}

/** `GET /fhir?_type=A,B&...`: one scope per type; every criterion must exist for every type. */
export async function systemSearch(svc: Services, req: FhirRequest, params: [string, string][]): Promise<FhirResponse> {
  const typeParam = params.filter(([k]) => k === '_type').flatMap(([, v]) => v.split(','));
  for (const t of typeParam) if (!svc.resourceTypes.has(t)) throw badRequest(`_type: unknown resource type "${t}"`);
  for (const t of typeParam) requirePermission(req.access, 's', t);
  const types = typeParam.length ? typeParam : [...svc.resourceTypes];
  const rest = params.filter(([k]) => k !== '_type');
  const scopes: Scope[] = [];
  let first: ParsedSearch | undefined;
  for (const t of types) {
    const parsed = parseSearch(svc.registry, t, rest, { strict: true, defaultCount: svc.config.defaultCount, maxCount: svc.config.maxCount, baseUrl: req.baseUrl, expandValueSet: svc.expandValueSet, subsumption: svc.subsumption });
    if (parsed.plan.sort.some((k) => k.index !== 'id' && k.index !== 'lastUpdated') && types.length > 1) throw badRequest('A search across several types can only be sorted by _id or _lastUpdated');
    first ??= parsed;
    scopes.push(parsed.plan.scopes[0]);
  }
  const parsed = { ...first!, plan: { ...first!.plan, scopes } };
  return answer(svc, req, req.baseUrl, params, parsed, []);
}
