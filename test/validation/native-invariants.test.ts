import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import { loadConfig } from '../../src/config';
import { loadDefinitions } from '../../src/validation/definitions';
import { packageExamples } from '../../src/validation/packages';
import type { WalkContext } from '../../src/validation/model';
import { nativeInvariant } from '../../src/validation/native-invariants';

/**
 * The invariants the validator evaluates natively (for speed) must answer as their FHIRPath does
 * (fhirpath.js, evaluated on the whole resource so that choice types are known), on the package
 * examples and on variants made to break them.
 */
type R = Record<string, any>;
const examples = packageExamples().map((e) => e.resource as R);
const of = (type: string) => examples.filter((r) => r.resourceType === type);
const clone = <T>(x: T): T => structuredClone(x);

function variants(base: R[], mutations: ((r: R) => void)[]): R[] {
  const out = base.map(clone);
  for (const r of base) for (const m of mutations) {
    const c = clone(r);
    m(c);
    out.push(c);
  }
  return out;
}

const observations = variants(of('Observation'), [
  (r) => (r.dataAbsentReason = { text: 'not asked' }),
  (r) => {
    for (const k of Object.keys(r)) if (k.startsWith('value')) delete r[k];
  },
  (r) => {
    for (const k of Object.keys(r)) if (k.startsWith('value')) delete r[k];
    delete r.component;
    delete r.hasMember;
  },
  (r) => (r.component = [{ code: clone(r.code), valueString: 'x' }]),
  (r) => (r.component = [{ code: { text: 'no value' } }, { code: { text: 'absent' }, dataAbsentReason: { text: 'x' } }]),
  (r) => {
    delete r.effectivePeriod;
    r.effectiveDateTime = '2024-01';
  },
  (r) => {
    delete r.effectivePeriod;
    r.effectiveDateTime = '2024';
  },
  (r) => {
    delete r.effectiveDateTime;
    r.effectiveDateTime = '2024-01-05';
  },
  (r) => (r.referenceRange = [{ text: 'normal' }, { appliesTo: [{ text: 'adults' }] }, { low: { value: 1 } }]),
  (r) => (r.valueQuantity = { value: 5, code: 'mmol/L' }),
]);

const insPatient = of('Patient').find((p) => JSON.stringify(p).includes('VALI'))!;
const patients = variants(of('Patient'), [
  (r) => (r.identifier = (r.identifier ?? []).map((i: R) => ({ ...i, use: 'usual' }))),
  (r) => (r.identifier = [...(r.identifier ?? []), { system: 'urn:oid:1.2.250.1.213.1.4.9', use: 'official', value: '1' }]),
  (r) => (r.identifier = [{ system: 'urn:oid:1.2.250.1.213.1.4.8', use: 'official', value: '1' }]),
  (r) => {
    for (const e of r.extension ?? []) for (const x of e.valueAddress?.extension ?? []) if (x.valueCoding) x.valueCoding.code = '99999';
  },
  (r) => {
    delete r.name;
    delete r.telecom;
    delete r.address;
  },
  (r) => (r.extension = [...(r.extension ?? []), { url: 'http://example.org/a' }, { url: 'http://example.org/b', valueString: 'x', extension: [{ url: 'c', valueString: 'y' }] }]),
  (r) => (r.telecom = [{ value: '0102030405' }, { system: 'phone', value: '0102030405' }]),
  (r) => (r.identifier = [{ value: '1', period: { start: '2024-02-01', end: '2024-01-01' } }, { value: '2', period: { start: '2024-01-01', end: '2024-02-01' } }]),
  (r) => (r.photo = [{ data: 'AAAA' }, { data: 'AAAA', contentType: 'image/png' }]),
  (r) => (r.contact = [{ relationship: [{ text: 'neighbour' }] }, { name: { family: 'Durand' } }]),
]);
patients.push(clone(insPatient));

/** Where each natively evaluated invariant sits, and the resources to hold it against. */
const CASES: { key: string; path: string; resources: R[] }[] = [
  { key: 'obs-3', path: 'Observation.referenceRange', resources: observations },
  { key: 'obs-6', path: 'Observation', resources: observations },
  { key: 'obs-7', path: 'Observation', resources: observations },
  { key: 'vs-2', path: 'Observation', resources: observations },
  { key: 'vs-3', path: 'Observation.component', resources: observations },
  { key: 'vs-1', path: 'Observation.effective', resources: observations },
  { key: 'qty-3', path: 'Observation.value.ofType(Quantity)', resources: observations },
  { key: 'fr-core-1', path: 'Patient', resources: patients },
  { key: 'fr-core-2', path: 'Patient', resources: patients },
  { key: 'fr-core-3', path: 'Patient', resources: patients },
  { key: 'pat-1', path: 'Patient.contact', resources: patients },
  { key: 'ext-1', path: 'Patient.extension', resources: patients },
  { key: 'cpt-2', path: 'Patient.telecom', resources: patients },
  { key: 'per-1', path: 'Patient.identifier.period', resources: patients },
  { key: 'att-1', path: 'Patient.photo', resources: patients },
];

/** The expressions of these keys in the loaded definitions (every wording the packages use). */
const { definitions } = loadDefinitions(loadConfig({}).validationCacheDir);
const wordings = new Map<string, Set<string>>();
for (const sd of definitions.structureDefinitions) for (const e of sd.elements) for (const c of e.constraint ?? []) if (c.expression) (wordings.get(c.key) ?? wordings.set(c.key, new Set()).get(c.key)!).add(c.expression);

describe('natively evaluated invariants agree with fhirpath.js', () => {
  it.each(CASES.map((c) => [c.key, c] as const))('%s', (_key, c) => {
    const natives = [...(wordings.get(c.key) ?? [])].map((expr) => ({ expr, test: nativeInvariant(c.key, expr) })).filter((x) => x.test);
    expect(natives.length).toBeGreaterThan(0);
    let failing = 0;
    for (const { expr, test } of natives) {
      for (const [i, r] of c.resources.entries()) {
        const values = fhirpath.evaluate(r, c.path, {}, r4model) as unknown[];
        // the raw JSON of each element, as the validator's walker hands it to the test
        const raw = (fhirpath.evaluate(r, c.path, {}, r4model, { resolveInternalTypes: false }) as { data?: unknown }[]).map((n) => n.data);
        expect(raw.length).toBe(values.length);
        const ctx = { resource: r, rootResource: r } as unknown as WalkContext;
        const nativeOk = raw.every((v) => test!(v, ctx));
        const fp = fhirpath.evaluate(r, `${c.path}.all(${expr})`, { resource: r, rootResource: r }, r4model) as unknown[];
        expect([c.key, expr, `resource ${i} ${r.id}`, nativeOk]).toEqual([c.key, expr, `resource ${i} ${r.id}`, fp[0] === true]);
        if (!nativeOk) failing++;
      }
    }
    // the variants do break it at least once (else the comparison proves little)
    expect(failing).toBeGreaterThan(0);
  });
});
