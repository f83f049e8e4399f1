import fs from 'node:fs';
import path from 'node:path';
import { reduceCodeSystem, reduceValueSet, type CodeSystemDef, type ValueSetDef } from '../terminology/definitions';
import { loadPackages, packagesFingerprint, profilesDir, type Canonical, type PackageInfo } from './packages';

/**
 * The definitions the validator is compiled from, reduced to what validation reads (no narrative,
 * mappings or documentation), so that they can be cached as one JSON file and loaded fast. Value sets
 * and code systems take the shapes terminology defines (src/terminology/definitions.ts).
 */

export interface SdType {
  code: string;
  profile?: string[];
  targetProfile?: string[];
  /** how a reference may be held: contained, referenced, bundled */
  aggregation?: string[];
}

export interface SdElement {
  id: string;
  path: string;
  sliceName?: string;
  min?: number;
  max?: string;
  base?: { path: string; min: number; max: string };
  type?: SdType[];
  contentReference?: string;
  slicing?: { discriminator?: { type: string; path: string }[]; ordered?: boolean; rules: string };
  binding?: { strength: string; valueSet?: string };
  constraint?: { key: string; severity: string; expression?: string; human: string; bestPractice?: boolean }[];
  maxLength?: number;
  isModifier?: boolean;
  /** fixed[x] / pattern[x]: the type suffix and the value */
  fixed?: { type: string; value: unknown };
  pattern?: { type: string; value: unknown };
  minValue?: unknown;
  maxValue?: unknown;
}

export interface Sd {
  url: string;
  version?: string;
  name?: string;
  type: string;
  kind: string;
  abstract?: boolean;
  derivation?: string;
  baseDefinition?: string;
  /** the package it came from */
  package: string;
  elements: SdElement[];
}

export interface Definitions {
  fingerprint: string;
  packages: PackageInfo[];
  structureDefinitions: Sd[];
  valueSets: ValueSetDef[];
  codeSystems: CodeSystemDef[];
}

/** Bump when the shape of the cache changes. */
const CACHE_FORMAT = 6;

const BEST_PRACTICE = 'http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice';

function reduceElement(e: Record<string, unknown>): SdElement {
  const out: SdElement = { id: (e.id as string) ?? (e.path as string), path: e.path as string };
  if (e.sliceName) out.sliceName = e.sliceName as string;
  if (e.min !== undefined) out.min = e.min as number;
  if (e.max !== undefined) out.max = e.max as string;
  if (e.base) {
    const b = e.base as SdElement['base'];
    out.base = { path: b!.path, min: b!.min, max: b!.max };
  }
  if (Array.isArray(e.type))
    out.type = (e.type as SdType[]).map((t) => {
      const r: SdType = { code: t.code };
      if (t.profile?.length) r.profile = t.profile;
      if (t.targetProfile?.length) r.targetProfile = t.targetProfile;
      if (t.aggregation?.length) r.aggregation = t.aggregation;
      return r;
    });
  if (e.contentReference) out.contentReference = e.contentReference as string;
  if (e.slicing) {
    const s = e.slicing as SdElement['slicing'];
    out.slicing = { discriminator: s!.discriminator, ordered: s!.ordered, rules: s!.rules };
  }
  if (e.binding) {
    const b = e.binding as { strength: string; valueSet?: string };
    out.binding = { strength: b.strength, valueSet: b.valueSet };
  }
  if (Array.isArray(e.constraint))
    out.constraint = (e.constraint as Record<string, unknown>[]).map((c) => {
      const r: NonNullable<SdElement['constraint']>[number] = { key: c.key as string, severity: c.severity as string, human: c.human as string };
      if (c.expression) r.expression = c.expression as string;
      if ((c.extension as { url: string; valueBoolean?: boolean }[] | undefined)?.some((x) => x.url === BEST_PRACTICE && x.valueBoolean)) r.bestPractice = true;
      return r;
    });
  if (typeof e.maxLength === 'number') out.maxLength = e.maxLength;
  if (e.isModifier) out.isModifier = true;
  for (const k of Object.keys(e)) {
    if (k.startsWith('fixed') && k.length > 5) out.fixed = { type: k.slice(5), value: e[k] };
    else if (k.startsWith('pattern') && k.length > 7) out.pattern = { type: k.slice(7), value: e[k] };
    else if (k.startsWith('minValue')) out.minValue = e[k];
    else if (k.startsWith('maxValue')) out.maxValue = e[k];
  }
  return out;
}

/** Builds the reduced definitions from the packages (slow: seconds). */
export function buildDefinitions(dir = profilesDir()): Definitions {
  const { packages, resources } = loadPackages(dir);
  const seen = new Set<string>();
  const defs: Definitions = { fingerprint: packagesFingerprint(dir), packages, structureDefinitions: [], valueSets: [], codeSystems: [] };
  for (const r of resources as (Canonical & { __pkg?: string })[]) {
    const key = `${r.resourceType}|${r.url}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const pkg = (r.__pkg as string) ?? '';
    if (r.resourceType === 'StructureDefinition') {
      const snap = (r.snapshot as { element?: Record<string, unknown>[] } | undefined)?.element;
      if (!snap) continue;
      defs.structureDefinitions.push({
        url: r.url,
        version: r.version,
        name: r.name as string,
        type: r.type as string,
        kind: r.kind as string,
        abstract: r.abstract as boolean,
        derivation: r.derivation as string,
        baseDefinition: r.baseDefinition as string,
        package: pkg,
        elements: snap.map(reduceElement),
      });
    } else if (r.resourceType === 'ValueSet') {
      defs.valueSets.push(reduceValueSet(r, pkg));
    } else if (r.resourceType === 'CodeSystem') {
      defs.codeSystems.push(reduceCodeSystem(r, pkg));
    }
  }
  return defs;
}

/**
 * The definitions, from the compiled cache file when it matches the packages, else built and cached.
 * `cacheDir` undefined: no cache file (always built).
 */
export function loadDefinitions(cacheDir: string | undefined, dir = profilesDir()): { definitions: Definitions; fromCache: boolean } {
  const fingerprint = `${CACHE_FORMAT}-${packagesFingerprint(dir)}`;
  const file = cacheDir ? path.join(cacheDir, `validation-definitions-${fingerprint}.json`) : undefined;
  if (file && fs.existsSync(file)) {
    try {
      const d = JSON.parse(fs.readFileSync(file, 'utf8')) as Definitions;
      if (d.fingerprint === fingerprint) return { definitions: d, fromCache: true };
    } catch {
      // a damaged cache is rebuilt
    }
  }
  const d = buildDefinitions(dir);
  d.fingerprint = fingerprint;
  if (file) {
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    try {
      fs.mkdirSync(cacheDir!, { recursive: true });
      fs.writeFileSync(tmp, JSON.stringify(d));
      fs.renameSync(tmp, file);
      for (const old of fs.readdirSync(cacheDir!)) if (old.startsWith('validation-definitions-') && old.endsWith('.json') && path.join(cacheDir!, old) !== file) fs.rmSync(path.join(cacheDir!, old), { force: true });
    } catch {
      // a cache that cannot be written (a read-only install) costs the next start this build again
      if (fs.existsSync(tmp)) fs.rmSync(tmp);
    }
  }
  return { definitions: d, fromCache: false };
}
