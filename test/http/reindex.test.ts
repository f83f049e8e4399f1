import { eachEngine, FHIR_JSON, ids, patient, request } from '../helpers/http';
import { pdsmDocument } from '../helpers/french';
import { startJobs } from '../../src/server';

const BIRTH_PLACE = 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace';
const birthCity = {
  resourceType: 'SearchParameter',
  url: 'https://espace-sante.example/fhir/SearchParameter/patient-birth-city',
  name: 'BirthCity',
  status: 'active',
  description: 'City of birth (patient-birthPlace extension)',
  code: 'birth-city',
  base: ['Patient'],
  type: 'string',
  expression: `Patient.extension.where(url='${BIRTH_PLACE}').value.city`,
};
const bornIn = (city: string, family: string) => ({ resourceType: 'Patient', name: [{ family }], extension: [{ url: BIRTH_PLACE, valueAddress: { city } }] });

eachEngine(
  'custom and French search parameters, $reindex',
  (h) => {
    const strict = (q: string) => request(h.app).get(`/fhir/${q}`).set('Prefer', 'handling=strict');
    const waitForJob = async (location: string) => {
      for (let i = 0; i < 200; i++) {
        const res = await request(h.app).get(location.replace(/^.*\/fhir/, '/fhir'));
        const status = res.body.parameter.find((p: { name: string }) => p.name === 'status').valueCode;
        if (status !== 'running') return res.body;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('job did not finish');
    };

    test('the French packages’ search parameters are active', async () => {
      const person = await h.create(patient('Séjour'));
      const doc = await h.create(
        pdsmDocument({
          patient: `Patient/${person.id}`,
          sourcePatient: { ipp: 'ipp-sejour', family: 'Séjour', given: 'Jeanne' },
          uniqueId: 'urn:oid:1.2.250.1.213.1.1.9.777.1',
          title: 'Compte rendu d’hospitalisation',
          date: '2024-02-10T17:00:00+01:00',
          period: { start: '2024-02-01', end: '2024-02-10' },
          binary: 'Binary/x',
        }),
      );
      expect(ids((await strict('DocumentReference?period-start=ge2024-01-15&period-end=le2024-03')).body)).toEqual([doc.id]);
      const appt = await h.create({ resourceType: 'Appointment', status: 'booked', start: '2024-06-03T09:00:00Z', end: '2024-06-03T09:30:00Z', participant: [{ status: 'accepted', actor: { display: 'Dr X' } }] });
      expect(ids((await strict('Appointment?start=2024-06-03')).body)).toEqual([appt.id]);
      const org = await h.create({ resourceType: 'Organization', name: 'Pharmacie', address: [{ line: ['3 rue de la Paix'] }] });
      expect(ids((await strict('Organization?address-line=3 rue')).body)).toEqual([org.id]);
      const cs = await request(h.app).get('/fhir/metadata');
      const docParams = cs.body.rest[0].resource.find((r: { type: string }) => r.type === 'DocumentReference').searchParam.map((p: { name: string }) => p.name);
      expect(docParams).toEqual(expect.arrayContaining(['period-start', 'period-end', 'isArchived']));
    });

    test('a posted SearchParameter becomes searchable after $reindex, for old and new resources', async () => {
      const before = await h.create(bornIn('Besançon', 'Avant'));
      await request(h.app).post('/fhir/SearchParameter').set('Content-Type', FHIR_JSON).send(JSON.stringify(birthCity)).expect(201);
      await request(h.app).post('/fhir/SearchParameter').set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...birthCity, url: 'https://espace-sante.example/fhir/SearchParameter/bad', code: 'bad', name: 'Bad', type: 'special' })).expect(201);
      expect((await strict('Patient?birth-city=besancon')).status).toBe(400);

      const started = await request(h.app).post('/fhir/$reindex');
      expect(started.status).toBe(202);
      expect(started.body.resourceType).toBe('OperationOutcome');
      const location = started.headers['content-location'];
      expect(location).toMatch(/\/fhir\/\$reindex\/[0-9a-f-]+$/);
      const job = await waitForJob(location);
      const param = (n: string) => job.parameter.filter((p: { name: string }) => p.name === n);
      expect(param('status')[0].valueCode).toBe('completed');
      expect(param('searchParameter').map((p: { valueCanonical: string }) => p.valueCanonical)).toEqual([birthCity.url]);
      expect(param('rejected')[0].part[1].valueString).toMatch(/special/);
      expect(param('processed')[0].valueInteger).toBe(param('total')[0].valueInteger);

      const after = await h.create(bornIn('Besançon', 'Après'));
      const res = await strict('Patient?birth-city=besancon');
      expect(res.status).toBe(200);
      expect(ids(res.body).sort()).toEqual([before.id, after.id].sort());
      const cs = await request(h.app).get('/fhir/metadata');
      expect(cs.body.rest[0].resource.find((r: { type: string }) => r.type === 'Patient').searchParam.map((p: { name: string }) => p.name)).toContain('birth-city');
      expect((await request(h.app).delete(location.replace(/^.*\/fhir/, '/fhir'))).status).toBe(409);
      expect((await request(h.app).get('/fhir/$reindex/unknown-job')).status).toBe(404);
    });

    test('an interrupted $reindex resumes where it was after a restart', async () => {
      const sp = { ...birthCity, url: 'https://espace-sante.example/fhir/SearchParameter/patient-birth-country', code: 'birth-country', name: 'BirthCountry', expression: `Patient.extension.where(url='${BIRTH_PLACE}').value.country` };
      const bundle = {
        resourceType: 'Bundle',
        type: 'batch',
        entry: Array.from({ length: 450 }, (_, i) => ({ request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', extension: [{ url: BIRTH_PLACE, valueAddress: { country: i === 449 ? 'Islande' : 'France' } }] } })),
      };
      await request(h.app).post('/fhir').set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle)).expect(200);
      await request(h.app).post('/fhir/SearchParameter').set('Content-Type', FHIR_JSON).send(JSON.stringify(sp)).expect(201);
      const job = await h.services.reindexer!.start();
      await h.services.jobs!.stop(); // the server stops during the job
      const location = `/fhir/$reindex/${job.id}`;
      const interrupted = (await request(h.app).get(location)).body;
      const value = (body: { parameter: { name: string; valueCode?: string; valueInteger?: number }[] }, n: string) => body.parameter.find((p) => p.name === n);
      expect(value(interrupted, 'status')!.valueCode).toBe('running');
      expect(value(interrupted, 'processed')!.valueInteger).toBeLessThan(value(interrupted, 'total')!.valueInteger!);
      expect((await strict('Patient?birth-country=islande')).status).toBe(400);

      // a new start of the server resumes the saved job
      await startJobs(h.services);
      await h.services.jobs!.idle();
      const done = (await request(h.app).get(location)).body;
      expect(value(done, 'status')!.valueCode).toBe('completed');
      expect(value(done, 'processed')!.valueInteger).toBe(value(done, 'total')!.valueInteger);
      expect(ids((await strict('Patient?birth-country=islande')).body)).toHaveLength(1);
    });
  },
);
