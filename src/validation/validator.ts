import type { Issue } from '../outcome';
import { Terminology } from '../terminology/terminology';
import { Bindings } from './bindings';
import { CompiledProfiles } from './compile';
import type { Definitions, Sd } from './definitions';
import { dedupe } from './issues';
import { isObj, type ValidateOptions } from './model';
import { BaseSchema } from './schema';
import { TypeNames } from './type-names';
import { Walker } from './walk';

export type { ValidateOptions } from './model';

/**
 * The validator, composed of its parts (README.md in this folder tells the model): the base JSON
 * structure (schema.ts, json-shape.ts), the profiles compiled into element trees (compile.ts), the
 * walk of a resource against them (walk.ts, with slicing.ts, element-checks.ts, bindings.ts,
 * references.ts, invariants.ts) and the terminology bindings are checked against.
 */
export class Validator {
  readonly terminology: Terminology;
  readonly schema: BaseSchema;
  readonly resourceTypes: ReadonlySet<string>;
  readonly packages: Definitions['packages'];
  private readonly profiles: CompiledProfiles;
  private readonly typeNames: TypeNames;
  private readonly walker: Walker;

  constructor(defs: Definitions, resourceTypes: ReadonlySet<string>) {
    this.resourceTypes = resourceTypes;
    this.packages = defs.packages;
    this.profiles = new CompiledProfiles(defs.structureDefinitions);
    this.typeNames = new TypeNames(defs.structureDefinitions);
    this.terminology = new Terminology(defs.valueSets, defs.codeSystems, new Set(defs.packages.filter((p) => p.version === 'single files').map((p) => p.name)));
    this.schema = new BaseSchema(resourceTypes);
    this.walker = new Walker(this.profiles, this.typeNames, this.schema, new Bindings(this.terminology), resourceTypes);
  }

  /** severity of a meta.profile this server does not know */
  get unknownProfile(): 'error' | 'warning' {
    return this.walker.unknownProfile;
  }

  set unknownProfile(severity: 'error' | 'warning') {
    this.walker.unknownProfile = severity;
  }

  /** The StructureDefinition of a canonical URL (version suffix ignored). */
  structureDefinition(url: string): Sd | undefined {
    return this.profiles.structureDefinition(url);
  }

  allStructureDefinitions(): Sd[] {
    return this.profiles.allStructureDefinitions();
  }

  /** Compiles every profile that `filter` accepts now (start-up), rather than on first use. */
  precompile(filter: (sd: Sd) => boolean): number {
    return this.profiles.precompile(filter);
  }

  /** FHIRPath of a JSON pointer into a resource: `Observation.value.ofType(Quantity)`, `Patient.name[0].given[1]`. */
  expressionOf(resourceType: string, pointer: string[]): string {
    return this.typeNames.expressionOf(resourceType, pointer);
  }

  /**
   * Validates a resource against the base R4 definition, each profile in meta.profile and `options.profiles`.
   * Returns every issue (errors, warnings), each with the FHIRPath of its element.
   */
  validate(resource: unknown, options: ValidateOptions = {}): Issue[] {
    const issues: Issue[] = [];
    if (!isObj(resource) || typeof resource.resourceType !== 'string') {
      return [{ severity: 'error', code: 'structure', diagnostics: 'Not a FHIR resource: a JSON object with a resourceType is expected', expression: ['resourceType'] }];
    }
    this.walker.validateResource(resource, resource.resourceType, options.profiles ?? [], { issues, resource, rootResource: resource, profile: '', depth: 0 });
    return dedupe(issues);
  }
}
