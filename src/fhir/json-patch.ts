import type { Resource } from 'fhir/r4';
import * as jsonpatch from 'fast-json-patch';
import { badRequest, FhirError } from '../outcome';

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

