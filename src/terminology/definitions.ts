/**
 * Value sets and code systems as terminology reads them: reduced from the packages' resources to
 * what expansion and code lookup need (no narrative or documentation), so that validation can cache
 * them with its compiled definitions (src/validation/definitions.ts) and hand them to `Terminology`.
 * Terminology owns these shapes; validation imports them, never the reverse.
 */

export interface Concept {
  code: string;
  /** the display and the designations' values */
  display?: string[];
  concept?: Concept[];
  property?: { code: string; valueCode?: string; valueString?: string; valueBoolean?: boolean }[];
}

export interface CodeSystemDef {
  url: string;
  version?: string;
  content?: string;
  package: string;
  concept?: Concept[];
}

export interface ValueSetInclude {
  system?: string;
  version?: string;
  concept?: { code: string }[];
  filter?: { property: string; op: string; value: string }[];
  valueSet?: string[];
}

export interface ValueSetDef {
  url: string;
  version?: string;
  package: string;
  compose?: { include?: ValueSetInclude[]; exclude?: ValueSetInclude[] };
  expansion?: { contains?: ExpansionContains[] };
}

export interface ExpansionContains {
  system?: string;
  code?: string;
  contains?: ExpansionContains[];
}

/** A ValueSet or CodeSystem resource of a package, as read from its JSON. */
type PackageResource = { url: string; version?: string; [k: string]: unknown };

/** A ValueSet resource reduced to its definition (compose) and any expansion it ships. */
export function reduceValueSet(r: PackageResource, pkg: string): ValueSetDef {
  return { url: r.url, version: r.version, package: pkg, compose: r.compose as ValueSetDef['compose'], expansion: r.expansion ? { contains: (r.expansion as ValueSetDef['expansion'])!.contains } : undefined };
}

/** A CodeSystem resource reduced to its content and concepts (codes, displays, designations, properties). */
export function reduceCodeSystem(r: PackageResource, pkg: string): CodeSystemDef {
  return { url: r.url, version: r.version, content: r.content as string, package: pkg, concept: reduceConcepts(r.concept as Record<string, unknown>[] | undefined) };
}

function reduceConcepts(cs?: Record<string, unknown>[]): Concept[] | undefined {
  if (!cs) return undefined;
  return cs.map((c) => {
    const r: Concept = { code: c.code as string };
    const display = [c.display, ...((c.designation as { value?: unknown }[] | undefined) ?? []).map((d) => d.value)].filter((d): d is string => typeof d === 'string');
    if (display.length) r.display = display;
    const props = (c.property as Concept['property'])?.filter((p) => p.valueCode !== undefined || p.valueString !== undefined || p.valueBoolean !== undefined);
    if (props?.length) r.property = props.map((p) => ({ code: p.code, valueCode: p.valueCode, valueString: p.valueString, valueBoolean: p.valueBoolean }));
    const sub = reduceConcepts(c.concept as Record<string, unknown>[] | undefined);
    if (sub) r.concept = sub;
    return r;
  });
}
