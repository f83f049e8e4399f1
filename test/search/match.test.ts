import type { Resource } from 'fhir/r4';
import { extractIndex } from '../../src/search/extract';
import { matchesAll, type ScopeLookup } from '../../src/search/match';
import { parseSearch } from '../../src/search/parse';
import { eachEngine, INS } from '../helpers/http';
import { bloodPressure, frPatient, insNir, LOINC, observationCategory, UCUM } from '../helpers/french';

/**
 * The in-memory match (what decides whether a version may be shown) means what the engines' queries
 * mean: for each query, the resources the store finds are exactly those matched in memory.
 */
// the INS-NIR of Émile Zola and of Zoé Abel
const NIR1 = insNir('1800175000001');
const NIR2 = insNir('2900275000002');

const QUERIES: [string, string][] = [
  ['Patient', 'name=zol'],
  ['Patient', 'name:exact=Zola'],
  ['Patient', 'name:contains=ola'],
  ['Patient', 'given=emile'],
  ['Patient', 'birthdate=1980'],
  ['Patient', 'birthdate=ge1985-01-01'],
  ['Patient', 'birthdate=lt1985&name=zola'],
  ['Patient', 'birthdate:missing=true'],
  ['Patient', `identifier=${INS}|${NIR1}`],
  ['Patient', `identifier=${NIR1},${NIR2}`],
  ['Patient', `identifier=${INS}|`],
  ['Patient', 'gender:not=female'],
  ['Patient', '_id=__P1__'],
  ['Patient', '_id:not=__P1__'],
  ['Patient', 'general-practitioner.name=medecin'],
  ['Patient', '_has:Observation:subject:code=2339-0'],
  ['Patient', '_lastUpdated=gt2000-01-01'],
  ['Observation', 'code=2339-0'],
  ['Observation', `code=${LOINC}|2339-0&date=2024-05-01`],
  ['Observation', 'date=ge2024-05-02'],
  ['Observation', 'date=sa2024-05-01T12:00:00Z'],
  ['Observation', `value-quantity=5.4|${UCUM}|mmol/L`],
  ['Observation', 'value-quantity=gt6|http://unitsofmeasure.org|mmol/L'],
  ['Observation', 'subject:Patient.name=zola'],
  ['Observation', 'subject.birthdate=1990'],
  ['Observation', 'code:text=glyc'],
  ['Observation', 'component-code-value-quantity=8480-6$gt120'],
  ['Observation', 'performer:missing=false'],
  ['RiskAssessment', 'probability=0.52'],
  ['RiskAssessment', 'probability=ge0.53'],
  ['ValueSet', 'url:below=http://esante.example/fhir/ValueSet/glucose'],
  ['ValueSet', 'url=http://esante.example/other'],
];

eachEngine('in-memory match against the store', (h) => {
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    const gp = await h.create({ resourceType: 'Practitioner', name: [{ family: 'Médecin' }] });
    const paris = { insee: '75056', city: 'Paris' };
    ids.P1 = (await h.create({ ...frPatient({ family: 'Zola', given: ['Émile'], gender: 'male', birthDate: '1980-01-01', ins: { nir: '1800175000001', birthPlace: paris } }), generalPractitioner: [{ reference: `Practitioner/${gp.id}` }] })).id;
    ids.P2 = (await h.create(frPatient({ family: 'Abel', given: ['Zoé'], gender: 'female', birthDate: '1990-02-02', ins: { nir: '2900275000002', birthPlace: paris } }))).id;
    ids.P3 = (await h.create({ resourceType: 'Patient', name: [{ family: 'Martinola' }] })).id;
    const obs = (code: string, patient: string, extra: Record<string, unknown>) => h.create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, subject: { reference: `Patient/${patient}` }, ...extra });
    await obs('2339-0', ids.P1, { effectiveDateTime: '2024-05-01T08:00:00Z', valueQuantity: { value: 5.4, unit: 'mmol/L', system: UCUM, code: 'mmol/L' }, performer: [{ reference: `Practitioner/${gp.id}` }] });
    await obs('2339-0', ids.P2, { effectiveDateTime: '2024-05-03T08:00:00Z', valueQuantity: { value: 110, unit: 'mg/dL', system: UCUM, code: 'mg/dL' } });
    await h.create(bloodPressure({ patient: `Patient/${ids.P2}`, at: '2024-05-01T21:00:00Z', systolic: 130, diastolic: 80 }));
    // the steps of a day, counted by a phone: a period
    await obs('41950-7', ids.P2, {
      category: observationCategory('vital-signs'),
      effectivePeriod: { start: '2024-05-01T00:00:00Z', end: '2024-05-02T00:00:00Z' },
      valueQuantity: { value: 8450, unit: 'steps/day', system: UCUM, code: '1/(24.h)' },
    });
    await h.create({ resourceType: 'Observation', status: 'final', code: { text: 'Glycémie à jeun' }, subject: { reference: `Patient/${ids.P3}` } });
    await h.create({ resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${ids.P1}` }, prediction: [{ probabilityDecimal: 0.52 }] });
    await h.create({ resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${ids.P2}` }, prediction: [{ probabilityDecimal: 0.547 }] });
    for (const url of ['http://esante.example/fhir/ValueSet/glucose', 'http://esante.example/fhir/ValueSet/glucose/fasting', 'http://esante.example/other']) await h.create({ resourceType: 'ValueSet', status: 'active', url });
  });

  test.each(QUERIES)('%s?%s', async (type, raw) => {
    const svc = h.services;
    const query = [...new URLSearchParams(raw.replace(/__(\w+)__/g, (_, k: string) => ids[k])).entries()];
    const { plan } = parseSearch(svc.registry, type, query, { strict: true, defaultCount: 100, maxCount: 100, baseUrl: svc.config.baseUrl, expandValueSet: svc.expandValueSet });
    const found = (await svc.store.search(plan)).items.map((v) => v.id).sort();
    const all = (await svc.store.search({ scopes: [{ type, conditions: [] }], sort: [], count: 100, total: 'none' })).items;
    const lookup: ScopeLookup = async (scope, only) => (await svc.store.search({ scopes: [{ type: scope.type, conditions: only ? [{ kind: 'id', ids: only }, ...scope.conditions] : scope.conditions }], sort: [], count: 100, total: 'none' })).items.map((v) => v.id);
    const matched: string[] = [];
    for (const v of all) {
      const index = extractIndex(svc.registry, JSON.parse(v.json!) as Resource, svc.config.baseUrl);
      if (await matchesAll(plan.scopes[0].conditions, { type, id: v.id, lastUpdated: v.lastUpdated, index }, lookup)) matched.push(v.id);
    }
    expect(matched.sort()).toEqual(found);
  });

  test('the queries are not trivial: most of them match some resources and not others', async () => {
    // guards the comparison above against a corpus where every query matches everything or nothing
    let discriminating = 0;
    for (const [type, raw] of QUERIES) {
      const query = [...new URLSearchParams(raw.replace(/__(\w+)__/g, (_, k: string) => ids[k])).entries()];
      const { plan } = parseSearch(h.services.registry, type, query, { strict: true, defaultCount: 100, maxCount: 100, baseUrl: h.services.config.baseUrl });
      const n = (await h.services.store.search(plan)).items.length;
      const all = (await h.services.store.search({ scopes: [{ type, conditions: [] }], sort: [], count: 100, total: 'none' })).items.length;
      if (n > 0 && n < all) discriminating++;
    }
    expect(discriminating).toBeGreaterThanOrEqual(QUERIES.length - 3);
  });
});
