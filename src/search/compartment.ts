import { r4PatientCompartment } from '../r4';
import type { IndexEntries } from './extract';
import type { Condition } from './plan';

/** The parameters that put a resource of `type` in a patient's compartment (R4 CompartmentDefinition; empty: never in one). */
export function patientCompartmentParams(type: string): string[] {
  return r4PatientCompartment().resource?.find((r) => r.code === type)?.param ?? [];
}

/** The types that can be in a patient's compartment, Patient included. */
export function patientCompartmentTypes(types: Iterable<string>): string[] {
  return [...types].filter((t) => t === 'Patient' || patientCompartmentParams(t).length > 0);
}

/** The search condition of "in the compartment of Patient/patientId", or undefined when the type has no compartment. */
export function compartmentCondition(type: string, patientId: string): Condition | undefined {
  const byParam: Condition[] = patientCompartmentParams(type).map((p) => ({ kind: 'key', param: p, keys: [`Patient/${patientId}`] }));
  if (type === 'Patient') byParam.push({ kind: 'id', ids: [patientId] });
  if (byParam.length === 0) return undefined;
  return byParam.length === 1 ? byParam[0] : { kind: 'any', conditions: byParam };
}

/** The patients (`Patient/id`) a resource's compartment parameters point to; a Patient is in its own. */
export function compartmentLinks(type: string, id: string, index: IndexEntries): string[] {
  const params = new Set(patientCompartmentParams(type));
  const links = new Set(index.keys.filter((k) => params.has(k.param) && /^Patient\/[^/]+$/.test(k.key)).map((k) => k.key));
  if (type === 'Patient') links.add(`Patient/${id}`);
  return [...links];
}
