import { badRequest, FhirError, operationOutcome, type Issue } from '../../outcome';
import { ensureVisible, requirePermission } from '../../policy/access';
import type { FhirRequest, FhirResponse, Services } from '../context';
import { checkDeleteOf, checkWriteOf, guardOf, updateBody } from '../interactions';
import { resourceBody, stamp } from '../resource';
import type { Operation } from './operation';

/**
 * $validate at system level (POST [base]/$validate), type level (POST [base]/[type]/$validate) and
 * instance level (POST [base]/[type]/[id]/$validate): runs the checks of the write it simulates
 * (create, update or delete: the same functions as the writes) without storing, and needs the
 * permission of that write; at instance level the token must also see the resource (404 otherwise,
 * as for an unknown one). Parameters: `resource`, `mode` (create | update | delete), `profile`, in a
 * Parameters body, the query string, or a bare resource body. With no mode, the resource is checked
 * as a create would check it (an update at instance level).
 */

type Mode = 'create' | 'update' | 'delete';
const MODES = new Set<string>(['create', 'update', 'delete']);
const PERMISSION = { create: 'c', update: 'u', delete: 'd' } as const;

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

const outcome = (issues: Issue[]): FhirResponse => ({ status: 200, headers: {}, body: operationOutcome(issues.length ? issues : [{ severity: 'information', code: 'informational', diagnostics: 'Validation successful: no issues found' }]) });

/** `type` undefined: system level (the type is the resource's). */
async function validate(svc: Services, req: FhirRequest, type: string | undefined, id?: string): Promise<FhirResponse> {
  if (!svc.validator) throw new FhirError(501, 'not-supported', 'Validation is not available on this server');
  const { resource, mode: given, profile } = readParams(req);
  if (given !== undefined && !MODES.has(given)) throw badRequest(`Unknown $validate mode "${given}" (create, update or delete)`, "Parameters.parameter.where(name='mode')");
  const mode = (given ?? (id === undefined ? 'create' : 'update')) as Mode;
  if (id === undefined && mode !== 'create') throw badRequest(`$validate in ${mode} mode is an instance-level operation: POST [type]/[id]/$validate`);
  if (mode !== 'delete' && !resource) throw badRequest('$validate needs the resource to validate (the body, or a "resource" parameter)');
  const resourceType = type ?? (typeof resource?.resourceType === 'string' ? resource.resourceType : undefined);
  if (!resourceType || !svc.resourceTypes.has(resourceType)) throw badRequest(`$validate at system level needs a resource of a known type, not ${JSON.stringify(resource?.resourceType)}`, 'resourceType');
  requirePermission(req.access, PERMISSION[mode], resourceType);
  const current = id === undefined ? undefined : await svc.store.read(resourceType, id);
  // an existing resource the token may not see answers as an unknown one: its existence is not revealed
  if (current) await ensureVisible(svc, req.access, current, req.baseUrl);
  const guard = await guardOf(svc, req, PERMISSION[mode], resourceType, id ?? (typeof resource?.id === 'string' ? resource.id : 'validate'));
  if (mode === 'delete') {
    checkDeleteOf(guard, resourceType, id!, current);
    const diagnostics = current.deleted ? `${resourceType}/${id} is already deleted: a delete would change nothing` : `${resourceType}/${id} can be deleted: no rule of this server prevents it`;
    return outcome([{ severity: 'information', code: 'informational', diagnostics }]);
  }
  try {
    // what the write would check, on the resource as it would store it
    const body = mode === 'update' && given !== undefined ? updateBody(svc, resource, resourceType, id!) : resourceBody(svc, resource, resourceType);
    if (id !== undefined) guard.existing(current);
    const stored = stamp(body, body.id ?? id ?? 'validate', (current?.versionId ?? 0) + 1, Date.now());
    return outcome(checkWriteOf(svc, req, guard, stored, profile ? [profile] : []).warnings);
  } catch (e) {
    // the write's refusal of the resource (400, 422) is this operation's answer: its issues
    if (e instanceof FhirError && (e.status === 400 || e.status === 422)) return outcome(e.issues);
    throw e;
  }
}

export const validateOperation: Operation = {
  name: 'validate',
  levels: ['system', 'type', 'instance'],
  methods: ['POST'],
  definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
  documentation: 'The checks of the write its mode simulates (create, update, delete), without storing: the resource as the body or in a Parameters resource parameter',
  available: (svc) => !!svc.validator,
  // the permission of the write it simulates, checked once the mode and the type are known
  permission: () => undefined,
  handler: (svc, req, target) => validate(svc, req, target.type, target.id),
};
