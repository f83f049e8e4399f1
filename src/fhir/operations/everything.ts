import type { Include, Scope, SearchPlan } from '../../search/plan';
import { parseSearch, type ParsedSearch } from '../../search/parse';
import { compartmentCondition, patientCompartmentTypes } from '../../search/compartment';
import { badRequest, notFound } from '../../outcome';
import { ensureVisible, requirePermission } from '../../policy/access';
import type { FhirRequest, FhirResponse, Services } from '../context';
import { answer } from '../search';
import type { Operation } from './operation';

/** `Patient/123/$everything`: the patient and everything in their compartment. */
async function everything(svc: Services, req: FhirRequest, id: string): Promise<FhirResponse> {
  const patient = await svc.store.read('Patient', id);
  if (!patient) throw notFound(`Patient/${id} is not known`);
  await ensureVisible(svc, req.access, patient, req.baseUrl);
  if (patient.deleted || !(await svc.hooks.show(req, patient))) throw notFound(`Patient/${id} is not known`);
  const allowed = new Set(['_since', '_type', '_count', '_cursor', '_format', '_pretty']);
  for (const [k] of req.query) if (!allowed.has(k)) throw badRequest(`$everything does not take the parameter "${k}" (it takes _since, _type, _count)`);
  const since = req.query.find(([k]) => k === '_since')?.[1];
  const typeFilter = req.query.filter(([k]) => k === '_type').flatMap(([, v]) => v.split(','));
  const all = patientCompartmentTypes(svc.resourceTypes);
  for (const t of typeFilter) if (!all.includes(t)) throw badRequest(`_type: ${t} is not in the Patient compartment`);
  const types = typeFilter.length ? typeFilter : all;
  const criteria: [string, string][] = since ? [['_lastUpdated', `ge${since}`]] : [];
  const control = req.query.filter(([k]) => k === '_count' || k === '_cursor');
  const scopes: Scope[] = [];
  let first: ParsedSearch | undefined;
  for (const t of types) {
    const parsed = parseSearch(svc.registry, t, [...criteria, ...control], { strict: true, defaultCount: svc.config.defaultCount, maxCount: svc.config.maxCount, baseUrl: req.baseUrl });
    first ??= parsed;
    scopes.push({ type: t, conditions: [compartmentCondition(t, id)!, ...parsed.plan.scopes[0].conditions] });
  }
  const plan: SearchPlan = { ...first!.plan, scopes };
  // and what those resources reference (practitioners, organisations, locations, medications...), as the operation defines
  const referenced: Include = { reverse: false, sourceType: '*', param: '*', iterate: false };
  return answer(svc, req, `${req.baseUrl}/Patient/${id}/$everything`, req.query, { ...first!, plan, includes: [referenced] }, []);
}


export const everythingOperation: Operation = {
  name: 'everything',
  levels: ['instance'],
  types: ['Patient'],
  methods: ['GET', 'HEAD'],
  definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
  documentation: 'The patient, every resource of their compartment and the resources those reference; _since, _type, _count',
  permission: (req) => requirePermission(req.access, 'r', 'Patient'),
  handler: (svc, req, target) => everything(svc, req, target.id!),
};
