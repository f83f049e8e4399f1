import { packageExamples } from '../../src/validation/packages';
import { BASE, eachEngine, FHIR_JSON, request } from '../helpers/http';
import { withTransactions } from '../helpers/engines';

/** Enforcement over HTTP with the French required profiles on (REQUIRED_PROFILES=fr). */
type R = Record<string, any>;
const examples = new Map(packageExamples().map((e) => [e.file, e.resource as R]));
let nirs = 0;
/** The FR Core Patient INS example with an INS of its own (an INS identifies one Patient): 13 digits and their key, 97 − (NIR mod 97). */
const insPatient = (): R => {
  const r = structuredClone(examples.get('Patient-FRCorePatientExample.json')!);
  delete r.id;
  const nir = `2800175${String(100000 + ++nirs).slice(1).padStart(6, '0')}`;
  const key = String(97n - (BigInt(nir) % 97n)).padStart(2, '0');
  for (const i of r.identifier as R[]) if (i.system === 'urn:oid:1.2.250.1.213.1.4.8') i.value = `${nir}${key}`;
  return r;
};
const glucose = (): R => {
  const r = structuredClone(examples.get('Observation-ExampleMesObservationGlucose001.json')!);
  delete r.id;
  delete r.meta;
  return r;
};

eachEngine(
  'validation on writes',
  (h) => {
    const post = (path: string, body: unknown, prefer?: string) => {
      const r = request(h.app).post(path).set('Content-Type', FHIR_JSON);
      if (prefer) r.set('Prefer', prefer);
      return r.send(JSON.stringify(body));
    };

    it('a valid FR Core Patient INS is stored; an invalid one answers 422 with every issue and its expression', async () => {
      expect((await post('/fhir/Patient', insPatient())).status).toBe(201);
      const bad = insPatient();
      bad.birthDate = '1974-02-30';
      bad.gender = 'homme';
      delete bad.identifier[0].value;
      const res = await post('/fhir/Patient', bad);
      expect(res.status).toBe(422);
      expect(res.body.resourceType).toBe('OperationOutcome');
      const exprs = res.body.issue.filter((i: R) => i.severity === 'error').flatMap((i: R) => i.expression);
      expect(exprs).toEqual(expect.arrayContaining(['Patient.birthDate', 'Patient.gender', 'Patient.identifier[0].value']));
      for (const i of res.body.issue) expect(i.diagnostics).toBeTruthy();
    });

    it('a string holding a control character (other than tab, line feed, carriage return) is refused where it is', async () => {
      const res = await post('/fhir/Practitioner', { resourceType: 'Practitioner', name: [{ family: 'Dur\u0000and', given: ['Jean\tPaul\nMarie'] }] });
      expect(res.status).toBe(422);
      expect(res.body.issue).toEqual([expect.objectContaining({ severity: 'error', expression: ['Practitioner.name[0].family'], diagnostics: expect.stringContaining('control character U+0000') })]);
      expect((await post('/fhir/Practitioner', { resourceType: 'Practitioner', name: [{ family: 'Durand', given: ['Jean\tPaul\r\nMarie'] }] })).status).toBe(201);
    });

    it('the required profile applies without meta.profile: an INS identifier makes FR Core Patient INS apply', async () => {
      const r = insPatient();
      delete r.meta;
      r.identifier[0].system = 'urn:oid:1.2.250.1.213.1.4.10'; // test INS-NIR, but typed INS-NIR: fits no slice...
      r.identifier[0].type.coding[0].code = 'INS-NIR-TEST';
      expect((await post('/fhir/Patient', r)).status).toBe(201);
      const noName = { resourceType: 'Patient', identifier: [{ system: 'urn:oid:1.2.250.1.213.1.4.8', value: '123' }] };
      const res = await post('/fhir/Patient', noName);
      expect(res.status).toBe(422);
      // FR Core Patient INS requires a name, a gender and a birth date
      expect(res.body.issue.flatMap((i: R) => i.expression ?? [])).toEqual(expect.arrayContaining(['Patient.name', 'Patient.gender', 'Patient.birthDate']));
    });

    it('an Observation with a Mesures de santé LOINC code must conform to that profile', async () => {
      expect((await post('/fhir/Observation', glucose())).status).toBe(201);
      const g = glucose();
      g.category = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }];
      const res = await post('/fhir/Observation', g);
      expect(res.status).toBe(422);
      expect(res.body.issue.flatMap((i: R) => i.expression ?? [])).toContain('Observation.category');
    });

    it('update and patch are validated (patch on its result) and leave the stored resource unchanged', async () => {
      const created = (await post('/fhir/Patient', insPatient())).body;
      const bad = { ...created, gender: 'homme' };
      const put = await request(h.app).put(`/fhir/Patient/${created.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(bad));
      expect(put.status).toBe(422);
      const patch = await request(h.app)
        .patch(`/fhir/Patient/${created.id}`)
        .set('Content-Type', 'application/json-patch+json')
        .send(JSON.stringify([{ op: 'remove', path: '/identifier' }]));
      expect(patch.status).toBe(422);
      expect(patch.body.issue.flatMap((i: R) => i.expression ?? [])).toContain('Patient.identifier');
      const now = await request(h.app).get(`/fhir/Patient/${created.id}`);
      expect(now.body.meta.versionId).toBe('1');
      expect(now.body.gender).toBe('male');
    });

    it('warnings come back under Prefer: return=OperationOutcome', async () => {
      const r = insPatient();
      r.extension.push({ url: 'http://example.org/not-known-here', valueString: 'x' });
      const res = await post('/fhir/Patient', r, 'return=OperationOutcome');
      expect(res.status).toBe(201);
      const warning = res.body.issue.find((i: R) => i.severity === 'warning' && i.diagnostics.includes('http://example.org/not-known-here'));
      expect(warning.expression).toEqual(['Patient.extension[2]']);
      expect(res.body.issue[0].severity).toBe('information');
    });

    withTransactions(h.engine)('a transaction with one invalid entry is refused whole and stores nothing', async () => {
      const marker = `tx-${Date.now()}`;
      const p = insPatient();
      p.identifier.push({ system: 'urn:test:marker', value: marker, use: 'secondary', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'RRI' }] } });
      const badObs = glucose();
      badObs.status = 'done';
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:0f1e2d3c-0000-4000-8000-000000000001', resource: p, request: { method: 'POST', url: 'Patient' } },
          { resource: badObs, request: { method: 'POST', url: 'Observation' } },
        ],
      };
      const res = await request(h.app).post('/fhir').set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle));
      expect(res.status).toBe(422);
      expect(res.body.issue.flatMap((i: R) => i.expression ?? [])).toContain('Bundle.entry[1].resource.status');
      const search = await request(h.app).get(`/fhir/Patient?identifier=urn:test:marker|${marker}`);
      expect(search.body.entry ?? []).toHaveLength(0);
    });

    it('$validate at type level: bare resource or Parameters, with profile and mode', async () => {
      const patients = async () => (await request(h.app).get('/fhir/Patient?_summary=count')).body.total as number;
      const stored = await patients();
      const ok = await post('/fhir/Patient/$validate', insPatient());
      expect(ok.status).toBe(200);
      expect(ok.body.issue.filter((i: R) => i.severity === 'error')).toEqual([]);
      const bad = insPatient();
      bad.gender = 'homme';
      const params = { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: bad }, { name: 'mode', valueCode: 'create' }] };
      const res = await post('/fhir/Patient/$validate', params);
      expect(res.status).toBe(200);
      expect(res.body.issue.find((i: R) => i.severity === 'error').expression).toEqual(['Patient.gender']);
      // profile parameter: a plain patient checked against FR Core Patient INS
      const plain = { resourceType: 'Patient', name: [{ family: 'Durand' }] };
      const withProfile = await post('/fhir/Patient/$validate?profile=https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins', plain);
      expect(withProfile.body.issue.filter((i: R) => i.severity === 'error').flatMap((i: R) => i.expression)).toContain('Patient.identifier');
      const unknown = await post('/fhir/Patient/$validate', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: plain }, { name: 'mode', valueCode: 'bogus' }] });
      expect(unknown.status).toBe(400);
      // nothing was stored
      expect(await patients()).toBe(stored);
    });

    it('$validate at instance level: update mode checks the id; delete mode needs an existing resource', async () => {
      const created = (await post('/fhir/Patient', insPatient())).body;
      const upd = await post(`/fhir/Patient/${created.id}/$validate`, { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { ...created, id: 'other' } }, { name: 'mode', valueCode: 'update' }] });
      expect(upd.status).toBe(200);
      expect(upd.body.issue.find((i: R) => i.severity === 'error').expression).toEqual(['Patient.id']);
      const del = await post(`/fhir/Patient/${created.id}/$validate`, { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] });
      expect(del.status).toBe(200);
      const missing = await post('/fhir/Patient/nope/$validate', { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] });
      expect(missing.status).toBe(404);
    });

    it('the CapabilityStatement lists $validate', async () => {
      const cs = (await request(h.app).get('/fhir/metadata')).body;
      const patient = cs.rest[0].resource.find((r: R) => r.type === 'Patient');
      expect(patient.operation).toEqual(expect.arrayContaining([{ name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' }]));
    });
  },
  { requiredProfiles: 'fr' },
);

export { BASE };
