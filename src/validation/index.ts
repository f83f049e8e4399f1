import type { Resource } from 'fhir/r4';
import { FhirError, type Issue } from '../outcome';
import { r4ResourceTypes } from '../r4';
import { loadDefinitions } from './definitions';
import { observationProfiles, RequiredProfiles, type RequiredProfilesMode } from './required-profiles';
import { Validator as Engine } from './validator';

export { Engine as ProfileValidator };
export type { RequiredProfilesMode };

export interface ValidatorOptions {
  /** directory for the compiled definitions cache; undefined: no cache */
  cacheDir?: string;
  requiredProfiles?: RequiredProfilesMode;
}

/** The server's validator: the compiled profiles plus the table of required profiles. */
export class Validator {
  constructor(
    readonly engine: Engine,
    readonly required: RequiredProfiles,
    /** how long loading took, in ms, and whether the compiled cache was used */
    readonly loadMs: number,
    readonly fromCache: boolean,
  ) {}

  /** Every issue of a resource against base R4, its meta.profile, the required profiles and `profiles`. */
  validate(resource: unknown, profiles: string[] = [], applyRequired = true): Issue[] {
    const req = applyRequired && typeof resource === 'object' && resource !== null ? this.required.for(resource as Record<string, unknown>) : [];
    return this.engine.validate(resource, { profiles: [...req, ...profiles] });
  }

  /** Throws 422 with every issue when the resource has errors; returns the warnings otherwise. */
  check(resource: Resource, profiles: string[] = []): Issue[] {
    const issues = this.validate(resource, profiles);
    if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) {
      const err = new FhirError(422, 'processing', `${resource.resourceType} does not conform`);
      err.issues.splice(0, err.issues.length, ...issues);
      throw err;
    }
    return issues;
  }
}

/** Loads the packages (from the compiled cache when present) and compiles the French profiles. */
export function loadValidator(options: ValidatorOptions = {}): Validator {
  const t0 = performance.now();
  const { definitions, fromCache } = loadDefinitions(options.cacheDir);
  const engine = new Engine(definitions, r4ResourceTypes());
  const byCode = observationProfiles(definitions.structureDefinitions, (vs) => {
    const e = engine.terminology.expand(vs);
    return e ? [...e.codes].flatMap(([system, codes]) => [...codes].map((code) => ({ system, code }))) : [];
  });
  const required = new RequiredProfiles(options.requiredProfiles ?? 'fr', byCode);
  // with no French enforcement (REQUIRED_PROFILES=none), an unknown meta.profile is reported as the HL7 validator does: a warning
  engine.unknownProfile = required.mode === 'none' ? 'warning' : 'error';
  // compile every profile of the French packages and ours now; base types compile with them
  engine.precompile((sd) => /^(hl7\.fhir\.fr\.|ans\.fhir\.fr\.|espace-sante)/.test(sd.package) && sd.kind === 'resource');
  engine.schema.warm(['Patient', 'Observation', 'DocumentReference', 'Practitioner', 'PractitionerRole', 'Organization', 'Bundle']);
  return new Validator(engine, required, performance.now() - t0, fromCache);
}
