import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eachEngine, FHIR_JSON, ids, anonymous, request } from '../helpers/http';
import { withTransactions } from '../helpers/engines';
import { authorizeThroughForms, exchangeCode, pkce } from '../helpers/smart';
import type { CompletedRequest } from '../../src/fhir/hooks';
import type { Refusal } from '../../src/policy/decision';
import { esMessage } from '../helpers/french';

/**
 * The holes an attacker found with two patients' tokens (issue "Close the isolation holes"): each way
 * into another patient's data, tried with patient A's token against patient B's data.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-isolation-'));
const REDIRECT = 'http://127.0.0.1:9/callback';
const PASSWORD = 'Motdepasse1!';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

eachEngine(
  'isolation of patient/ tokens',
  (h) => {
    let A: string, B: string, practitioner: string;
    let tokenA: string;

    const tokenOf = async (login: string, to: string, scope = 'openid launch/patient patient/*.cruds') => {
      const { verifier, challenge } = pkce();
      const back = await authorizeThroughForms(h.app, { clientId: 'carnet', redirectUri: REDIRECT, scope, login, password: PASSWORD, to, dataDir, challenge });
      const res = await exchangeCode(h.app, { code: back.searchParams.get('code')!, clientId: 'carnet', redirectUri: REDIRECT, verifier });
      expect(res.status).toBe(200);
      return res.body.access_token as string;
    };
    const as = (token: string) => {
      const auth = (t: ReturnType<ReturnType<typeof anonymous>['get']>) => t.set('Authorization', `Bearer ${token}`);
      return {
        get: (p: string) => auth(anonymous(h.app).get(p)),
        post: (p: string, body: unknown, headers: Record<string, string> = {}) => auth(anonymous(h.app).post(p)).set('Content-Type', FHIR_JSON).set(headers).send(JSON.stringify(body)),
        put: (p: string, body: unknown, headers: Record<string, string> = {}) => auth(anonymous(h.app).put(p)).set('Content-Type', FHIR_JSON).set(headers).send(JSON.stringify(body)),
        patch: (p: string, ops: unknown, headers: Record<string, string> = {}) => auth(anonymous(h.app).patch(p)).set('Content-Type', 'application/json-patch+json').set(headers).send(JSON.stringify(ops)),
        delete: (p: string) => auth(anonymous(h.app).delete(p)),
      };
    };
    const admin = () => request(h.app);
    const allergy = (patient: string, code: string, extra: Json = {}) => ({
      resourceType: 'AllergyIntolerance',
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
      code: { coding: [{ system: 'http://snomed.info/sct', code }], text: code },
      patient: { reference: `Patient/${patient}` },
      ...extra,
    });
    const message = (subject: string, sender: string, recipient: string) => esMessage({ subject, sender, recipient, text: 'Bonjour' });
    const entryIds = (bundle: Json) => (bundle.entry ?? []).map((e: Json) => `${e.resource?.resourceType}/${e.resource?.id}`);
    const expectNotFound = (res: { status: number; body: Json }) => {
      expect(res.status).toBe(404);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].code).toBe('not-found');
    };

    beforeAll(async () => {
      A = (await h.create({ resourceType: 'Patient', name: [{ family: 'Lefèvre', given: ['Hélène'] }], birthDate: '1980-08-01' })).id;
      B = (await h.create({ resourceType: 'Patient', name: [{ family: 'Martin', given: ['Bernard'] }], birthDate: '1975-03-14' })).id;
      practitioner = (await h.create({ resourceType: 'Practitioner', name: [{ family: 'Durand' }] })).id;
      await h.services.auth!.clients.add({ clientId: 'carnet', name: 'Carnet', kind: 'patient-app', redirectUris: [REDIRECT], scope: 'openid launch/patient patient/*.cruds', authMethod: 'none' });
      await h.services.auth!.accounts.add({ login: 'helene', password: PASSWORD, patientId: A, channel: 'email', to: 'helene@example.fr' });
      tokenA = await tokenOf('helene', 'helene@example.fr');
    });

    describe('a deleted resource of another patient', () => {
      let deleted: string;
      beforeAll(async () => {
        deleted = (await h.create(allergy(B, '91935009'))).id;
        expect((await admin().delete(`/fhir/AllergyIntolerance/${deleted}`)).status).toBe(204);
      });

      test('cannot be revived into the own compartment: PUT, conditional PUT with its id, PATCH and DELETE answer 404 as for an unknown id', async () => {
        const a = as(tokenA);
        expectNotFound(await a.put(`/fhir/AllergyIntolerance/${deleted}`, { ...allergy(A, '91935009'), id: deleted }));
        expectNotFound(await a.put(`/fhir/AllergyIntolerance?code=nothing-matches`, { ...allergy(A, '91935009'), id: deleted }));
        expectNotFound(await a.patch(`/fhir/AllergyIntolerance/${deleted}`, [{ op: 'replace', path: '/patient/reference', value: `Patient/${A}` }]));
        expectNotFound(await a.delete(`/fhir/AllergyIntolerance/${deleted}`));
        // and nothing was written: the resource is still B's deleted one, at the version of its deletion
        const now = await admin().get(`/fhir/AllergyIntolerance/${deleted}/_history`);
        expect(now.body.entry.length).toBe(2);
        expect((await admin().get(`/fhir/AllergyIntolerance/${deleted}`)).status).toBe(410);
      });

      test('its versions are not shown: read, vread, instance, type and system history', async () => {
        const a = as(tokenA);
        expectNotFound(await a.get(`/fhir/AllergyIntolerance/${deleted}`));
        expectNotFound(await a.get(`/fhir/AllergyIntolerance/${deleted}/_history/1`));
        expectNotFound(await a.get(`/fhir/AllergyIntolerance/${deleted}/_history/2`));
        expectNotFound(await a.get(`/fhir/AllergyIntolerance/${deleted}/_history`));
        const typeHistory = await a.get('/fhir/AllergyIntolerance/_history?_count=100');
        expect(typeHistory.status).toBe(200);
        expect(entryIds(typeHistory.body)).not.toContain(`AllergyIntolerance/${deleted}`);
        expect((typeHistory.body.entry ?? []).some((e: Json) => e.request?.url?.includes(deleted))).toBe(false);
        const systemHistory = await a.get('/fhir/_history?_count=1000');
        expect((systemHistory.body.entry ?? []).some((e: Json) => e.fullUrl?.includes(deleted) || e.request?.url?.includes(deleted))).toBe(false);
        // a confined token is told how many versions it may see, never how many exist server-wide
        expect(typeHistory.body.total).toBe((typeHistory.body.entry ?? []).length);
      });

      test('an own deleted resource is the patient’s: 410 on read, and it may be written again', async () => {
        const a = as(tokenA);
        const own = (await a.post('/fhir/AllergyIntolerance', allergy(A, '300916003'))).body.id;
        expect((await a.delete(`/fhir/AllergyIntolerance/${own}`)).status).toBe(204);
        expect((await a.get(`/fhir/AllergyIntolerance/${own}`)).status).toBe(410);
        expect((await a.get(`/fhir/AllergyIntolerance/${own}/_history/1`)).status).toBe(200);
        expect((await a.get(`/fhir/AllergyIntolerance/${own}/_history`)).body.entry.length).toBe(2);
        expect((await a.put(`/fhir/AllergyIntolerance/${own}`, { ...allergy(A, '300916003'), id: own })).status).toBe(201);
      });
    });

    test('each version is judged on its own content: one that was the patient’s stays visible, a later one of another patient does not', async () => {
      const moved = await h.create(allergy(A, '227493005'));
      const move = await admin().put(`/fhir/AllergyIntolerance/${moved.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...allergy(B, '227493005'), id: moved.id }));
      expect(move.status).toBe(200);
      const a = as(tokenA);
      expect((await a.get(`/fhir/AllergyIntolerance/${moved.id}/_history/1`)).status).toBe(200);
      expectNotFound(await a.get(`/fhir/AllergyIntolerance/${moved.id}/_history/2`));
      expectNotFound(await a.get(`/fhir/AllergyIntolerance/${moved.id}`));
      expectNotFound(await a.get(`/fhir/AllergyIntolerance/${moved.id}/_history`));
      const history = (await a.get('/fhir/AllergyIntolerance/_history?_count=100')).body;
      const versions = (history.entry ?? []).filter((e: Json) => e.resource?.id === moved.id).map((e: Json) => e.resource.meta.versionId);
      expect(versions).toEqual(['1']);
      // and it cannot be written back into the own compartment
      expectNotFound(await a.put(`/fhir/AllergyIntolerance/${moved.id}`, { ...allergy(A, '227493005'), id: moved.id }));
    });

    describe('chains and _has', () => {
      let toB: string, toA: string, encounterA: string;
      beforeAll(async () => {
        // a message between the two patients is in both compartments
        toB = (await h.create(message(`Patient/${A}`, `Patient/${A}`, `Patient/${B}`))).id;
        toA = (await h.create(message(`Patient/${A}`, `Patient/${A}`, `Patient/${A}`))).id;
        await h.create(allergy(B, '91935009'));
        encounterA = (await h.create({ resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${A}` } })).id;
        // another patient's observation that names A's encounter
        await h.create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] }, subject: { reference: `Patient/${B}` }, encounter: { reference: `Encounter/${encounterA}` } });
      });

      test('a chained target is searched under the restrictions of its type: another patient’s birth date and name are not revealed', async () => {
        const a = as(tokenA);
        // the search reaches the message (it is in A's compartment), but not through B's data
        expect(ids((await a.get('/fhir/Communication?recipient:Patient.birthdate=1975-03-14')).body)).toEqual([]);
        expect(ids((await a.get('/fhir/Communication?recipient:Patient.name=martin')).body)).toEqual([]);
        expect(ids((await a.get('/fhir/Communication?recipient.name=martin')).body)).toEqual([]);
        expect(ids((await a.get('/fhir/Communication?recipient:Patient.birthdate=1980-08-01')).body)).toEqual([toA]);
        // the same searches for the administrator find what they ask for
        expect(ids((await admin().get('/fhir/Communication?recipient:Patient.birthdate=1975-03-14')).body)).toEqual([toB]);
      });

      test('a _has source is searched under the restrictions of its type, also behind a chain', async () => {
        const a = as(tokenA);
        expect(ids((await a.get('/fhir/Communication?recipient:Patient._has:AllergyIntolerance:patient:code=91935009')).body)).toEqual([]);
        expect(ids((await a.get('/fhir/Encounter?_has:Observation:encounter:code=2345-7')).body)).toEqual([]);
        expect(ids((await admin().get('/fhir/Encounter?_has:Observation:encounter:code=2345-7')).body)).toEqual([encounterA]);
        expect(ids((await admin().get('/fhir/Communication?recipient:Patient._has:AllergyIntolerance:patient:code=91935009')).body)).toEqual([toB]);
      });

      test('_include and _revinclude stay confined, also with :iterate', async () => {
        const a = as(tokenA);
        const inc = (await a.get(`/fhir/Communication?_id=${toB}&_include=Communication:recipient&_include=Communication:sender`)).body;
        expect(entryIds(inc).sort()).toEqual([`Communication/${toB}`, `Patient/${A}`].sort());
        const rev = (await a.get(`/fhir/Encounter?_id=${encounterA}&_revinclude=Observation:encounter&_include:iterate=Observation:subject`)).body;
        expect(entryIds(rev)).toEqual([`Encounter/${encounterA}`]);
      });
    });

    describe('writes into another patient’s record', () => {
      test('a resource with any compartment link to another patient is refused (403), on create, update and in a batch', async () => {
        const a = as(tokenA);
        const refused = [
          await a.post('/fhir/AllergyIntolerance', allergy(B, '91935009', { asserter: { reference: `Patient/${A}` } })),
          await a.post('/fhir/AllergyIntolerance', allergy(A, '91935009', { asserter: { reference: `Patient/${B}` } })),
          await a.post('/fhir/Communication', message(`Patient/${B}`, `Patient/${A}`, `Practitioner/${practitioner}`)),
          await a.post('/fhir/Communication', message(`Patient/${A}`, `Patient/${A}`, `Patient/${B}`)),
          await a.post('/fhir/Patient', { resourceType: 'Patient', link: [{ other: { reference: `Patient/${B}` }, type: 'seealso' }] }),
        ];
        for (const res of refused) {
          expect(res.status).toBe(403);
          expect(res.body.issue[0].code).toBe('forbidden');
        }
        expect(refused[0].body.issue[0].diagnostics).toContain(`Patient/${B}`);
        const own = (await a.post('/fhir/AllergyIntolerance', allergy(A, '91935009'))).body.id;
        expect((await a.put(`/fhir/AllergyIntolerance/${own}`, { ...allergy(A, '91935009', { recorder: { reference: `Patient/${B}` } }), id: own })).status).toBe(403);
        expect((await a.patch(`/fhir/AllergyIntolerance/${own}`, [{ op: 'add', path: '/asserter', value: { reference: `Patient/${B}` } }])).status).toBe(403);
        const batch = await a.post('/fhir', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'POST', url: 'AllergyIntolerance' }, resource: allergy(B, '91935009') }] });
        expect(batch.body.entry[0].response.status).toMatch(/^403/);
        // nothing of A's appears in B's record
        expect(ids((await admin().get(`/fhir/AllergyIntolerance?patient=${B}&asserter=Patient/${A}`)).body)).toEqual([]);
        expect(ids((await admin().get(`/fhir/Communication?subject=${B}`)).body)).toEqual([]);
      });

      withTransactions(h.engine)('a transaction with one entry into another patient’s record is refused as a whole', async () => {
        const a = as(tokenA);
        const tx = await a.post('/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'AllergyIntolerance' }, resource: allergy(A, '762952008') }, { request: { method: 'POST', url: 'Communication' }, resource: message(`Patient/${B}`, `Patient/${A}`, `Practitioner/${practitioner}`) }] });
        expect(tx.status).toBe(403);
        expect(tx.body.issue[0].expression).toEqual(['Bundle.entry[1]']);
        expect(ids((await admin().get('/fhir/AllergyIntolerance?code=762952008')).body)).toEqual([]);
      });

      test('a message to a professional is the patient’s to send', async () => {
        const a = as(tokenA);
        const sent = await a.post('/fhir/Communication', message(`Patient/${A}`, `Patient/${A}`, `Practitioner/${practitioner}`));
        expect(sent.status).toBe(201);
      });
    });

    test('conditional writes only ever match what the token may search: another patient’s resource is neither updated, deleted nor revealed', async () => {
      const theirs = await h.create(allergy(B, '418689008'));
      const a = as(tokenA);
      // If-None-Exist with criteria that only B's resource meets: created (201), as when nothing matches
      const created = await a.post('/fhir/AllergyIntolerance', allergy(A, '418689008'), { 'If-None-Exist': 'code=418689008' });
      expect(created.status).toBe(201);
      // a conditional update of those criteria now matches A's own only
      const updated = await a.put('/fhir/AllergyIntolerance?code=418689008', { ...allergy(A, '418689008'), id: created.body.id });
      expect(updated.status).toBe(200);
      expect(updated.body.id).toBe(created.body.id);
      // a conditional delete removes A's, never B's
      expect((await a.delete('/fhir/AllergyIntolerance?code=418689008')).status).toBe(204);
      expect((await admin().get(`/fhir/AllergyIntolerance/${theirs.id}`)).status).toBe(200);
      expect((await admin().get(`/fhir/AllergyIntolerance/${created.body.id}`)).status).toBe(410);
      // a conditional reference to B, in a batch entry, resolves to nothing, as for an unknown patient
      const batch = await a.post('/fhir', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `AllergyIntolerance?patient=${B}` } }, { request: { method: 'GET', url: `Patient?_id=${B}` } }] });
      expect(batch.body.entry.map((e: Json) => e.resource.total ?? (e.resource.entry ?? []).length)).toEqual([0, 0]);
    });

    test('a granular scope is judged on each version too: a version outside its query is not shown', async () => {
      const granular = await tokenOf('helene', 'helene@example.fr', 'openid launch/patient patient/Observation.rs?category=vital-signs');
      const obs = await h.create({ resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }], code: { text: 'poids' }, subject: { reference: `Patient/${A}` } });
      const moved = await admin()
        .put(`/fhir/Observation/${obs.id}`)
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify({ ...obs, category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }] }));
      expect(moved.status).toBe(200);
      const g = as(granular);
      expect((await g.get(`/fhir/Observation/${obs.id}/_history/1`)).status).toBe(200);
      expectNotFound(await g.get(`/fhir/Observation/${obs.id}/_history/2`));
      expectNotFound(await g.get(`/fhir/Observation/${obs.id}`));
      const history = (await g.get('/fhir/Observation/_history?_count=100')).body;
      expect((history.entry ?? []).filter((e: Json) => e.resource?.id === obs.id).map((e: Json) => e.resource.meta.versionId)).toEqual(['1']);
    });

    test('resources contained in another patient’s resources are not found with _contained', async () => {
      const report = (patient: string) => ({
        resourceType: 'DiagnosticReport',
        status: 'final',
        code: { text: 'bilan' },
        subject: { reference: `Patient/${patient}` },
        contained: [{ resourceType: 'Observation', id: 'o1', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2093-3' }] }, subject: { reference: `Patient/${patient}` } }],
        result: [{ reference: '#o1' }],
      });
      const theirs = await h.create(report(B));
      const mine = await h.create(report(A));
      const a = as(tokenA);
      const found = await a.get('/fhir/Observation?_contained=true&code=2093-3');
      expect(found.status).toBe(200);
      expect(found.body.entry.map((e: Json) => e.fullUrl)).toEqual([`http://fhir.test/fhir/DiagnosticReport/${mine.id}#o1`]);
      const containers = await a.get('/fhir/Observation?_contained=true&_containedType=container&code=2093-3');
      expect(entryIds(containers.body)).toEqual([`DiagnosticReport/${mine.id}`]);
      expect(JSON.stringify(containers.body)).not.toContain(theirs.id);
    });

    test('each answer carries the policy’s decision and the rule that decided it (what the audit trail records)', async () => {
      const ended: CompletedRequest[] = [];
      h.services.hooks.add({ name: 'decisions', requestComplete: (c) => void ended.push(c) });
      const theirs = await h.create(allergy(B, '91935009'));
      const a = as(tokenA);
      await a.get(`/fhir/Patient/${A}`);
      await a.get(`/fhir/AllergyIntolerance/${theirs.id}`);
      await a.post('/fhir/AllergyIntolerance', allergy(A, '91935009', { asserter: { reference: `Patient/${B}` } }));
      await a.get('/fhir/Practitioner?name=x');
      const [read, hidden, linked, outOfScope] = ended.slice(-4);
      expect(read.req.decisions).toEqual([{ effect: 'allow', rule: 'scope', reason: 'read on Patient granted by patient/*.cruds' }]);
      expect((hidden.error as Refusal).decision).toEqual({ effect: 'deny', rule: 'compartment', reason: `AllergyIntolerance/${theirs.id} is not known` });
      expect((hidden.error as Refusal).status).toBe(404);
      expect((linked.error as Refusal).decision).toMatchObject({ effect: 'deny', rule: 'compartment-link' });
      expect((outOfScope.error as Refusal).decision).toMatchObject({ effect: 'deny', rule: 'scope' });
    });

    test('If-Match on another patient’s resource answers 404, not its version', async () => {
      const other = await h.create(allergy(B, '91935009'));
      const a = as(tokenA);
      expectNotFound(await a.put(`/fhir/AllergyIntolerance/${other.id}`, { ...allergy(A, '91935009'), id: other.id }, { 'If-Match': 'W/"7"' }));
      expectNotFound(await a.patch(`/fhir/AllergyIntolerance/${other.id}`, [{ op: 'replace', path: '/code/text', value: 'x' }], { 'If-Match': 'W/"7"' }));
      const del = await as(tokenA).delete(`/fhir/AllergyIntolerance/${other.id}`).set('If-Match', 'W/"7"');
      expectNotFound(del);
    });
  },
  { dataDir },
);

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
