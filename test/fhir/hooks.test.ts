import type { HookConsumer, CommittedWrite } from '../../src/fhir/hooks';
import { FhirError } from '../../src/outcome';
import { withTransactions } from '../helpers/engines';
import { anonymous, eachEngine, FHIR_JSON, ids, request } from '../helpers/http';
import { frPatient, frPractitioner } from '../helpers/french';

/**
 * The hook points reach every path to the data: a willShow consumer that keeps one resource unseen
 * makes it unreachable by every way in; afterCommit runs once per committed write, each entry of a
 * transaction included, and never for one rolled back; beforeWrite refuses inside the atomic section.
 */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

eachEngine('hook points', (h) => {
  const hidden = new Set<string>();
  const committed: CommittedWrite[] = [];
  let patient: string, seen: string, unseen: string, doctor: string;
  const obs = (extra: Json) => ({ resourceType: 'Observation', status: 'final', code: { text: 'note' }, subject: { reference: `Patient/${patient}` }, ...extra });
  const post = (path: string, body: unknown) => request(h.app).post(path).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
  const entryKeys = (bundle: Json) => (bundle.entry ?? []).map((e: Json) => `${e.resource?.resourceType}/${e.resource?.id}`);

  beforeAll(async () => {
    const consumer: HookConsumer = {
      name: 'test',
      willShow: (_req, v) => (hidden.has(`${v.type}/${v.id}`) ? undefined : v),
      afterCommit: (c) => void committed.push(c),
      beforeWrite: (w) => {
        if ((w.input.resource as Json | null)?.code?.text === 'refused by a hook') throw new FhirError(403, 'forbidden', 'refused by a hook');
      },
    };
    h.services.hooks.add(consumer);
    patient = (await h.create(frPatient({ family: 'Crochet', given: ['Hélène'], gender: 'female', birthDate: '1981-02-03' }))).id;
    doctor = (await h.create(frPractitioner({ family: 'Durand', given: 'Paul', rpps: '10003456789', prefix: 'M' }))).id;
    seen = (await h.create(obs({ performer: [{ reference: `Practitioner/${doctor}` }] }))).id;
    unseen = (await h.create(obs({ performer: [{ reference: `Practitioner/${doctor}` }] }))).id;
    hidden.add(`Observation/${unseen}`).add(`Practitioner/${doctor}`);
  });

  test('willShow: a resource kept unseen is unreachable by read, vread, history, search, include, revinclude, $everything, batch and transaction entries, and write answers', async () => {
    expect((await request(h.app).get(`/fhir/Observation/${unseen}`)).status).toBe(404);
    expect((await request(h.app).get(`/fhir/Observation/${unseen}/_history/1`)).status).toBe(404);
    expect((await request(h.app).get(`/fhir/Observation/${unseen}/_history`)).status).toBe(404);
    expect((await request(h.app).get(`/fhir/Observation/${seen}`)).status).toBe(200);
    const typeHistory = await request(h.app).get('/fhir/Observation/_history?_count=100');
    expect(entryKeys(typeHistory.body)).toContain(`Observation/${seen}`);
    expect(entryKeys(typeHistory.body)).not.toContain(`Observation/${unseen}`);
    expect(entryKeys((await request(h.app).get('/fhir/_history?_count=1000')).body)).not.toContain(`Observation/${unseen}`);
    expect(ids((await request(h.app).get(`/fhir/Observation?subject=Patient/${patient}`)).body)).toEqual([seen]);
    const inc = await request(h.app).get(`/fhir/Observation?_id=${seen}&_include=Observation:performer&_include=Observation:subject`);
    expect(entryKeys(inc.body).sort()).toEqual([`Observation/${seen}`, `Patient/${patient}`].sort());
    const rev = await request(h.app).get(`/fhir/Patient?_id=${patient}&_revinclude=Observation:subject`);
    expect(entryKeys(rev.body).sort()).toEqual([`Observation/${seen}`, `Patient/${patient}`].sort());
    const everything = await request(h.app).get(`/fhir/Patient/${patient}/$everything`);
    expect(entryKeys(everything.body)).toContain(`Observation/${seen}`);
    expect(entryKeys(everything.body)).not.toContain(`Observation/${unseen}`);
    expect(entryKeys(everything.body)).not.toContain(`Practitioner/${doctor}`);
    const batch = await post('/fhir', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Observation/${unseen}` } }, { request: { method: 'GET', url: `Observation?_id=${unseen},${seen}` } }] });
    expect(batch.body.entry[0].response.status).toMatch(/^404/);
    expect(ids(batch.body.entry[1].resource)).toEqual([seen]);
    // an update's answer does not carry a resource that may not be shown
    const updated = await request(h.app).put(`/fhir/Observation/${unseen}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...obs({}), id: unseen }));
    expect(updated.status).toBe(200);
    expect(updated.text).toBe('');
  });

  withTransactions(h.engine)('willShow: a transaction’s GET entry does not show a resource kept unseen', async () => {
    const tx = await post('/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'GET', url: `Observation?_id=${unseen},${seen}` } }] });
    expect(tx.status).toBe(200);
    expect(ids(tx.body.entry[0].resource)).toEqual([seen]);
  });

  test('afterCommit: once per committed write (create, update, patch, delete), never for a refused or unchanged one', async () => {
    committed.length = 0;
    const created = await post('/fhir/Observation', obs({}));
    const id = created.body.id as string;
    await request(h.app).put(`/fhir/Observation/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...obs({ status: 'amended' }), id }));
    await request(h.app).patch(`/fhir/Observation/${id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/status', value: 'final' }]));
    expect((await request(h.app).delete(`/fhir/Observation/${id}`)).status).toBe(204);
    expect((await request(h.app).delete(`/fhir/Observation/${id}`)).status).toBe(204); // already deleted: nothing written
    const refused = await post('/fhir/Observation', obs({ code: { text: 'refused by a hook' } }));
    expect(refused.status).toBe(403);
    expect(committed.map((c) => `${c.req.method} ${c.type} v${c.result.version.versionId}`)).toEqual(['POST Observation v1', 'PUT Observation v2', 'PATCH Observation v3', 'DELETE Observation v4']);
    expect(ids((await request(h.app).get('/fhir/Observation?code:text=refused')).body)).toEqual([]);
  });

  test('afterCommit: a batch reports each entry committed, not the refused one', async () => {
    committed.length = 0;
    const batch = await post('/fhir', { resourceType: 'Bundle', type: 'batch', entry: [obs({}), obs({ code: { text: 'refused by a hook' } }), obs({})].map((resource) => ({ request: { method: 'POST', url: 'Observation' }, resource })) });
    expect(batch.body.entry.map((e: Json) => e.response.status.slice(0, 3))).toEqual(['201', '403', '201']);
    expect(committed).toHaveLength(2);
  });

  withTransactions(h.engine)('afterCommit: each entry of a committed transaction, once it committed; none of a rolled-back one', async () => {
    committed.length = 0;
    const ok = await post('/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [obs({}), obs({})].map((resource) => ({ request: { method: 'POST', url: 'Observation' }, resource })) });
    expect(ok.status).toBe(200);
    expect(committed).toHaveLength(2);
    committed.length = 0;
    const rolledBack = await post('/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [obs({}), obs({ code: { text: 'refused by a hook' } })].map((resource) => ({ request: { method: 'POST', url: 'Observation' }, resource })) });
    expect(rolledBack.status).toBe(403);
    expect(committed).toHaveLength(0);
  });

  test('requestStart may refuse a request; requestComplete learns how each one ended, a Bundle entry and a request refused before routing too', async () => {
    const ended: string[] = [];
    h.services.hooks.add({
      name: 'gate',
      requestStart: (req) => {
        if (req.path[0] === 'Basic') throw new FhirError(403, 'forbidden', 'closed by a hook');
      },
      requestComplete: (c) => void ended.push(`${c.req.method} ${c.req.path.join('/')} ${c.response?.status ?? (c.error as FhirError).status}`),
    });
    const refused = await request(h.app).get('/fhir/Basic');
    expect(refused.status).toBe(403);
    expect(refused.body.issue[0].diagnostics).toBe('closed by a hook');
    await request(h.app).get(`/fhir/Patient/${patient}`);
    await post('/fhir', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Basic?code=x' } }] });
    await anonymous(h.app).get(`/fhir/Patient/${patient}`);
    expect(ended).toEqual(['GET Basic 403', `GET Patient/${patient} 200`, 'GET Basic 403', 'POST  200', `GET Patient/${patient} 401`]);
  });
});
