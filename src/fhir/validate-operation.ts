import type { Resource } from 'fhir/r4';
import { badRequest, FhirError, notFound, operationOutcome, type Issue } from '../outcome';
import type { FhirRequest, FhirResponse, Services } from './context';

/**
 * $validate at type level (POST [base]/[type]/$validate) and instance level
 * (POST [base]/[type]/[id]/$validate): runs the validation of writes (base R4, meta.profile, the
 * required profiles) without storing. Parameters: `resource`, `mode` (create | update | delete),
 * `profile`, in a Parameters body, the query string, or a bare resource body.
 */

const MODES = new Set(['create', 'update', 'delete']);

interface Params {
  resource?: Record<string, unknown>;
  mode?: string;
  profile?: string;
}

function readParams(req: FhirRequest): Params {
  const out: Params = {};
  for (const [k, v] of req.query) {
    if (k === 'mode') out.mode = v;
    else if (k === 'profile') out.profile = v;
  }
  const body = req.body;
  if (body === undefined || body === null || body === '') return out;
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('$validate takes a Parameters resource or the resource to validate as its body');
  const b = body as Record<string, unknown>;
  if (b.resourceType !== 'Parameters') {
    out.resource = b;
    return out;
  }
  const params = Array.isArray(b.parameter) ? (b.parameter as Record<string, unknown>[]) : [];
  params.forEach((p, i) => {
    if (typeof p !== 'object' || p === null) throw badRequest(`Parameters.parameter[${i}] is not a parameter`, `Parameters.parameter[${i}]`);
    switch (p.name) {
      case 'resource':
        if (typeof p.resource !== 'object' || p.resource === null) throw badRequest('The resource parameter must carry a resource', `Parameters.parameter[${i}].resource`);
        out.resource = p.resource as Record<string, unknown>;
        break;
      case 'mode':
        if (typeof p.valueCode !== 'string') throw badRequest('The mode parameter is a code (valueCode)', `Parameters.parameter[${i}].value`);
        out.mode = p.valueCode;
        break;
      case 'profile': {
        const v = p.valueUri ?? p.valueCanonical;
        if (typeof v !== 'string') throw badRequest('The profile parameter is a uri (valueUri or valueCanonical)', `Parameters.parameter[${i}].value`);
        out.profile = v;
        break;
      }
      default:
        throw badRequest(`Unknown parameter "${String(p.name)}" for $validate (resource, mode, profile)`, `Parameters.parameter[${i}].name`);
    }
  });
  return out;
}

export async function validateOperation(svc: Services, req: FhirRequest, type: string, id?: string): Promise<FhirResponse> {
  if (!svc.validator) throw new FhirError(501, 'not-supported', 'Validation is not available on this server');
  const { resource, mode, profile } = readParams(req);
  if (mode !== undefined && !MODES.has(mode)) throw badRequest(`Unknown $validate mode "${mode}" (create, update or delete)`, 'Parameters.parameter.where(name=\'mode\')');
  if (mode === 'delete') {
    if (id === undefined) throw badRequest('$validate in delete mode is an instance-level operation: POST [type]/[id]/$validate');
    const current = await svc.store.read(type, id);
    if (!current || current.deleted) throw notFound(`${type}/${id} is not known`);
    return { status: 200, headers: {}, body: operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `${type}/${id} can be deleted: no rule of this server prevents it` }]) };
  }
  if (!resource) throw badRequest('$validate needs the resource to validate (the body, or a "resource" parameter)');
  if (resource.resourceType !== type) throw badRequest(`The resource is a ${String(resource.resourceType)}, not a ${type}`, 'resourceType');
  const issues: Issue[] = [];
  if (mode === 'update') {
    if (id === undefined) throw badRequest('$validate in update mode is an instance-level operation: POST [type]/[id]/$validate');
    if (resource.id !== id) issues.push({ severity: 'error', code: 'invalid', diagnostics: `An update of ${type}/${id} needs id "${id}" in the resource`, expression: [`${type}.id`] });
  }
  issues.push(...svc.validator.validate(resource as unknown as Resource, profile ? [profile] : []));
  if (!issues.length) issues.push({ severity: 'information', code: 'informational', diagnostics: 'Validation successful: no issues found' });
  return { status: 200, headers: {}, body: operationOutcome(issues) };
}
