import { BASE, eachEngine, FHIR_JSON, INS, patient, request } from '../helpers/http';
import { withTransactions } from '../helpers/engines';
import { pdsmDocument, VISIBILITY } from '../helpers/french';
import { FR_CORE_PATIENT } from '../../src/validation/required-profiles';

eachEngine('REST interactions', (h) => {
  const post = (path: string, body: unknown) => request(h.app).post(path).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
  const put = (path: string, body: unknown) => request(h.app).put(path).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

  test('create assigns id, version and lastUpdated and answers 201 with Location, ETag and Last-Modified', async () => {
    const before = Date.now();
    const res = await post('/fhir/Patient', { ...patient('Martin'), id: 'client-chosen', meta: { versionId: '99', profile: [FR_CORE_PATIENT] } });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    const id = res.body.id;
    expect(id).not.toBe('client-chosen');
    expect(res.headers.location).toBe(`${BASE}/Patient/${id}/_history/1`);
    expect(res.headers.etag).toBe('W/"1"');
    expect(new Date(res.headers['last-modified']).getTime()).toBeGreaterThan(before - 2000);
    expect(res.body.meta.versionId).toBe('1');
    expect(Date.parse(res.body.meta.lastUpdated)).toBeGreaterThanOrEqual(before);
    expect(res.body.meta.profile).toEqual([FR_CORE_PATIENT]);
    expect(res.body.name[0].family).toBe('Martin');
  });

  test('read, vread and HEAD', async () => {
    const p = await h.create(patient('Durand'));
    const read = await request(h.app).get(`/fhir/Patient/${p.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(p);
    expect(read.headers.etag).toBe('W/"1"');
    const vread = await request(h.app).get(`/fhir/Patient/${p.id}/_history/1`);
    expect(vread.status).toBe(200);
    expect(vread.body).toEqual(p);
    const head = await request(h.app).head(`/fhir/Patient/${p.id}`);
    expect(head.status).toBe(200);
    expect(head.headers.etag).toBe('W/"1"');
    expect(head.text ?? '').toBe('');
    expect((await request(h.app).get(`/fhir/Patient/${p.id}/_history/2`)).status).toBe(404);
    expect((await request(h.app).get(`/fhir/Patient/${p.id}/_history/x`)).status).toBe(404);
    const unknown = await request(h.app).get('/fhir/Patient/does-not-exist');
    expect(unknown.status).toBe(404);
    expect(unknown.body.resourceType).toBe('OperationOutcome');
  });

  test('conditional read: If-None-Match and If-Modified-Since answer 304', async () => {
    const p = await h.create(patient('Cache'));
    expect((await request(h.app).get(`/fhir/Patient/${p.id}`).set('If-None-Match', 'W/"1"')).status).toBe(304);
    expect((await request(h.app).get(`/fhir/Patient/${p.id}`).set('If-None-Match', 'W/"0"')).status).toBe(200);
    const later = new Date(Date.now() + 5000).toUTCString();
    expect((await request(h.app).get(`/fhir/Patient/${p.id}`).set('If-Modified-Since', later)).status).toBe(304);
    expect((await request(h.app).get(`/fhir/Patient/${p.id}`).set('If-Modified-Since', 'Mon, 01 Jan 2001 00:00:00 GMT')).status).toBe(200);
  });

  test('an unknown resource type is 404 with an OperationOutcome', async () => {
    const res = await request(h.app).get('/fhir/Patientt/1');
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toMatch(/Unknown resource type "Patientt"/);
    expect((await post('/fhir/Banana', { resourceType: 'Banana' })).status).toBe(404);
  });

  test('update makes a new version; update-as-create answers 201', async () => {
    const p = await h.create(patient('Petit'));
    const res = await put(`/fhir/Patient/${p.id}`, { ...p, gender: 'female' });
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
    expect(res.headers.etag).toBe('W/"2"');
    expect(res.headers.location).toBe(`${BASE}/Patient/${p.id}/_history/2`);
    expect(res.body.gender).toBe('female');
    const v1 = await request(h.app).get(`/fhir/Patient/${p.id}/_history/1`);
    expect(v1.body.gender).toBeUndefined();

    const created = await put('/fhir/Patient/chosen-by-client-1', { ...patient('Neuf'), id: 'chosen-by-client-1' });
    expect(created.status).toBe(201);
    expect(created.body.id).toBe('chosen-by-client-1');
    expect(created.body.meta.versionId).toBe('1');
  });

  test('update refuses a body whose id is missing or differs from the URL', async () => {
    const p = await h.create(patient('Id'));
    const other = await put(`/fhir/Patient/${p.id}`, { ...p, id: 'other' });
    expect(other.status).toBe(400);
    expect(other.body.issue[0].expression).toEqual(['Patient.id']);
    const { id: _drop, ...noId } = p;
    expect((await put(`/fhir/Patient/${p.id}`, noId)).status).toBe(400);
    const bad = await put('/fhir/Patient/has space', { ...patient('x'), id: 'has space' });
    expect(bad.status).toBe(400);
  });

  test('If-Match: a stale version is refused with 412 and nothing is written', async () => {
    const p = await h.create(patient('Lock'));
    await put(`/fhir/Patient/${p.id}`, { ...p, gender: 'male' });
    const stale = await put(`/fhir/Patient/${p.id}`, { ...p, gender: 'female' }).set('If-Match', 'W/"1"');
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    const current = await request(h.app).get(`/fhir/Patient/${p.id}`);
    expect(current.body.meta.versionId).toBe('2');
    expect(current.body.gender).toBe('male');
    const ok = await put(`/fhir/Patient/${p.id}`, { ...p, gender: 'female' }).set('If-Match', 'W/"2"');
    expect(ok.status).toBe(200);
    expect(ok.body.meta.versionId).toBe('3');
  });

  test('JSON Patch changes the resource, keeps history, and fails cleanly', async () => {
    const p = await h.create(patient('Patch', { active: true }));
    const ops = [
      { op: 'replace', path: '/active', value: false },
      { op: 'add', path: '/name/0/given/-', value: 'Marie' },
    ];
    const res = await request(h.app).patch(`/fhir/Patient/${p.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify(ops));
    expect(res.status).toBe(200);
    expect(res.body.active).toBe(false);
    expect(res.body.name[0].given).toEqual(['Jeanne', 'Marie']);
    expect(res.body.meta.versionId).toBe('2');

    const failing = await request(h.app)
      .patch(`/fhir/Patient/${p.id}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'test', path: '/active', value: true }, { op: 'remove', path: '/name' }]));
    expect(failing.status).toBe(422);
    expect(failing.body.issue[0].expression).toEqual(['Patient.active']);
    expect((await request(h.app).get(`/fhir/Patient/${p.id}`)).body.meta.versionId).toBe('2');

    const idChange = await request(h.app).patch(`/fhir/Patient/${p.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/id', value: 'x' }]));
    expect(idChange.status).toBe(422);
    const notArray = await request(h.app).patch(`/fhir/Patient/${p.id}`).set('Content-Type', 'application/json-patch+json').send('{"op":"remove"}');
    expect(notArray.status).toBe(400);
    const fhirpathPatch = await request(h.app).patch(`/fhir/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Parameters' }));
    expect(fhirpathPatch.status).toBe(415);
    expect((await request(h.app).patch('/fhir/Patient/nope').set('Content-Type', 'application/json-patch+json').send('[]')).status).toBe(404);
    // what the patch library throws rather than reports is still the client's mistake, and nothing changes
    const patchOf = (ops: unknown) => request(h.app).patch(`/fhir/Patient/${p.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify(ops));
    const intoItself = await patchOf([{ op: 'move', from: '/name', path: '/name/0' }]);
    expect(intoItself.status).toBe(422);
    expect(intoItself.body.issue[0].diagnostics).toMatch(/^JSON Patch could not be applied/);
    const proto = await patchOf([{ op: 'add', path: '/__proto__/polluted', value: 1 }]);
    expect(proto.status).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await request(h.app).get(`/fhir/Patient/${p.id}`)).body.meta.versionId).toBe('2');
  });

  test('conditional patch by identifier, as PDSm changes document labels', async () => {
    const person = await h.create(patient('Dossier'));
    const doc = await h.create(
      pdsmDocument({
        patient: `Patient/${person.id}`,
        sourcePatient: { ipp: 'ipp-dossier', family: 'Dossier', given: 'Jeanne' },
        uniqueId: 'urn:oid:1.2.3.4.5',
        entryUuid: 'urn:uuid:11111111-2222-3333-4444-555555555555',
        title: 'Compte rendu d’hospitalisation',
        date: '2025-04-29T12:00:00+02:00',
        period: { start: '2025-04-20T08:00:00+02:00', end: '2025-04-25T08:00:00+02:00' },
        binary: 'Binary/1',
      }),
    );
    const ops = [{ op: 'add', path: '/securityLabel', value: [{ coding: [{ system: VISIBILITY, code: 'MASQUE_PS' }] }] }];
    const res = await request(h.app)
      .patch('/fhir/DocumentReference?identifier=urn:ietf:rfc:3986|urn:uuid:11111111-2222-3333-4444-555555555555')
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify(ops));
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(doc.id);
    expect(res.body.securityLabel[0].coding[0].code).toBe('MASQUE_PS');
    const none = await request(h.app).patch('/fhir/DocumentReference?identifier=urn:ietf:rfc:3986|nothing').set('Content-Type', 'application/json-patch+json').send(JSON.stringify(ops));
    expect(none.status).toBe(404);
  });

  test('delete is logical: read answers 410, history and vread survive', async () => {
    const p = await h.create(patient('Gone'));
    const del = await request(h.app).delete(`/fhir/Patient/${p.id}`);
    expect(del.status).toBe(204);
    const read = await request(h.app).get(`/fhir/Patient/${p.id}`);
    expect(read.status).toBe(410);
    expect(read.body.resourceType).toBe('OperationOutcome');
    expect((await request(h.app).get(`/fhir/Patient/${p.id}/_history/1`)).status).toBe(200);
    expect((await request(h.app).get(`/fhir/Patient/${p.id}/_history/2`)).status).toBe(410);
    const hist = await request(h.app).get(`/fhir/Patient/${p.id}/_history`);
    expect(hist.body.total).toBe(2);
    expect(hist.body.entry[0].request).toEqual({ method: 'DELETE', url: `Patient/${p.id}` });
    expect(hist.body.entry[0].resource).toBeUndefined();
    expect((await request(h.app).delete(`/fhir/Patient/${p.id}`)).status).toBe(204);
    expect((await request(h.app).get(`/fhir/Patient/${p.id}/_history`)).body.total).toBe(2);
    expect((await request(h.app).delete('/fhir/Patient/never-was')).status).toBe(404);
    // an update brings it back as a new version
    const back = await put(`/fhir/Patient/${p.id}`, { ...p });
    expect(back.status).toBe(201);
    expect(back.body.meta.versionId).toBe('3');
  });

  test('conditional create with If-None-Exist: none creates, one returns it, several is 412', async () => {
    const IPP = 'https://hopital.example/ipp';
    const ident = { identifier: [{ system: IPP, value: '2800875123456' }] };
    const first = await post('/fhir/Patient', patient('Cond', ident)).set('If-None-Exist', `identifier=${IPP}|2800875123456`);
    expect(first.status).toBe(201);
    const again = await post('/fhir/Patient', patient('Cond', ident)).set('If-None-Exist', `identifier=${IPP}|2800875123456`);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    await h.create(patient('Cond', ident));
    const many = await post('/fhir/Patient', patient('Cond', ident)).set('If-None-Exist', `identifier=${IPP}|2800875123456`);
    expect(many.status).toBe(412);
    const unknownParam = await post('/fhir/Patient', patient('Cond')).set('If-None-Exist', 'nonsense=1');
    expect(unknownParam.status).toBe(400);
    // criteria that select nothing (empty values are ignored) would match every Patient: refused
    const empty = await post('/fhir/Patient', patient('Cond')).set('If-None-Exist', 'identifier=');
    expect(empty.status).toBe(400);
    expect(empty.body.issue[0].diagnostics).toContain('needs search criteria that select resources');
    expect((await request(h.app).delete('/fhir/Patient?name=')).status).toBe(400);
  });

  test('conditional creates and updates sent at once with the same criteria store one resource', async () => {
    const sys = 'urn:test:parallel';
    const created = await Promise.all(Array.from({ length: 8 }, () => post('/fhir/Patient', patient('P', { identifier: [{ system: sys, value: 'C' }] })).set('If-None-Exist', `identifier=${sys}|C`)));
    expect(created.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
    const updated = await Promise.all(Array.from({ length: 8 }, () => put(`/fhir/Patient?identifier=${sys}|U`, patient('P', { identifier: [{ system: sys, value: 'U' }] }))));
    expect(updated.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    for (const value of ['C', 'U']) expect((await request(h.app).get(`/fhir/Patient?identifier=${sys}|${value}`)).body.total).toBe(1);
  });

  withTransactions(h.engine)('conditional entries of a transaction match what is stored (its entries are written inside the store transaction)', async () => {
    const sys = 'urn:test:parallel-tx';
    await h.create(patient('P', { identifier: [{ system: sys, value: 'C' }] }));
    await h.create(patient('P', { identifier: [{ system: sys, value: 'U' }] }));
    const tx = await request(h.app)
      .post('/fhir')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'PUT', url: `Patient?identifier=${sys}|U` }, resource: patient('P2', { identifier: [{ system: sys, value: 'U' }] }) }, { request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${sys}|C` }, resource: patient('P', { identifier: [{ system: sys, value: 'C' }] }) }] }));
    expect(tx.status).toBe(200);
    expect(tx.body.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(['200 OK', '200 OK']);
    for (const value of ['C', 'U']) expect((await request(h.app).get(`/fhir/Patient?identifier=${sys}|${value}`)).body.total).toBe(1);
  });

  test('conditional update: none creates, one updates, several is 412', async () => {
    const sys = 'urn:test:condupdate';
    const created = await put(`/fhir/Patient?identifier=${sys}|A`, patient('U', { identifier: [{ system: sys, value: 'A' }] }));
    expect(created.status).toBe(201);
    const updated = await put(`/fhir/Patient?identifier=${sys}|A`, patient('U2', { identifier: [{ system: sys, value: 'A' }] }));
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
    expect(updated.body.meta.versionId).toBe('2');
    await h.create(patient('U3', { identifier: [{ system: sys, value: 'B' }] }));
    await h.create(patient('U4', { identifier: [{ system: sys, value: 'B' }] }));
    expect((await put(`/fhir/Patient?identifier=${sys}|B`, patient('U5'))).status).toBe(412);
    expect((await put('/fhir/Patient', patient('U6'))).status).toBe(400);
  });

  test('conditional delete: one match is deleted, several is 412', async () => {
    const sys = 'urn:test:conddelete';
    const p = await h.create(patient('D', { identifier: [{ system: sys, value: '1' }] }));
    const res = await request(h.app).delete(`/fhir/Patient?identifier=${sys}|1`);
    expect(res.status).toBe(204);
    expect((await request(h.app).get(`/fhir/Patient/${p.id}`)).status).toBe(410);
    await h.create(patient('D', { identifier: [{ system: sys, value: '2' }] }));
    await h.create(patient('D', { identifier: [{ system: sys, value: '2' }] }));
    expect((await request(h.app).delete(`/fhir/Patient?identifier=${sys}|2`)).status).toBe(412);
    expect((await request(h.app).delete('/fhir/Patient')).status).toBe(400);
  });

  test('Prefer: return=minimal, representation and OperationOutcome', async () => {
    const minimal = await post('/fhir/Patient', patient('Min')).set('Prefer', 'return=minimal');
    expect(minimal.status).toBe(201);
    expect(minimal.headers.location).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    expect(minimal.text).toBe('');
    const oo = await post('/fhir/Patient', patient('Oo')).set('Prefer', 'return=OperationOutcome');
    expect(oo.status).toBe(201);
    expect(oo.body.resourceType).toBe('OperationOutcome');
    expect(oo.body.issue[0].severity).toBe('information');
    const rep = await post('/fhir/Patient', patient('Rep')).set('Prefer', 'return=representation');
    expect(rep.body.resourceType).toBe('Patient');
  });

  test('history at instance, type and system level with _since, _count and paging', async () => {
    const p = await h.create({ resourceType: 'Practitioner', name: [{ family: 'Hist' }] });
    // _since includes its own instant, and the answer may come back within the millisecond of the first version
    await new Promise((r) => setTimeout(r, 5));
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 4; i++) await put(`/fhir/Practitioner/${p.id}`, { ...p, active: i % 2 === 0 });
    const inst = await request(h.app).get(`/fhir/Practitioner/${p.id}/_history`);
    expect(inst.status).toBe(200);
    expect(inst.body.type).toBe('history');
    expect(inst.body.total).toBe(5);
    expect(inst.body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId)).toEqual(['5', '4', '3', '2', '1']);
    expect(inst.body.entry[4].request).toEqual({ method: 'POST', url: 'Practitioner' });
    expect(inst.body.entry[0].response.etag).toBe('W/"5"');

    const sinceRes = await request(h.app).get(`/fhir/Practitioner/${p.id}/_history`).query({ _since: since });
    expect(sinceRes.body.total).toBe(4);

    // paging: two by two, following next links, then back with previous
    let page = await request(h.app).get(`/fhir/Practitioner/${p.id}/_history?_count=2`);
    const seen: string[] = [];
    const pages = [];
    for (;;) {
      pages.push(page.body);
      seen.push(...page.body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId));
      const next = page.body.link.find((l: { relation: string }) => l.relation === 'next');
      if (!next) break;
      expect(next.url.startsWith(BASE)).toBe(true);
      page = await request(h.app).get(next.url.slice(BASE.length + 0).replace(/^/, '/fhir'));
    }
    expect(seen).toEqual(['5', '4', '3', '2', '1']);
    expect(pages).toHaveLength(3);
    const prev = pages[2].link.find((l: { relation: string }) => l.relation === 'previous');
    const back = await request(h.app).get(`/fhir${prev.url.slice(BASE.length)}`);
    expect(back.body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId)).toEqual(['3', '2']);

    const type = await request(h.app).get('/fhir/Practitioner/_history');
    expect(type.body.total).toBe(5); // the only Practitioner of this suite
    expect(type.body.entry.every((e: { resource?: { resourceType: string } }) => !e.resource || e.resource.resourceType === 'Practitioner')).toBe(true);
    const system = await request(h.app).get('/fhir/_history').query({ _since: since, _count: 100 });
    expect(system.body.entry.filter((e: { fullUrl: string }) => e.fullUrl.endsWith(`/Practitioner/${p.id}`))).toHaveLength(4);
    expect((await request(h.app).get('/fhir/_history?_since=yesterday')).status).toBe(400);
    expect((await request(h.app).get('/fhir/Patient/none/_history')).status).toBe(404);
  });

  test('parallel updates of one resource never lose a version', async () => {
    const p = await h.create(patient('Race'));
    const n = 20;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => put(`/fhir/Patient/${p.id}`, { ...p, name: [{ family: `Race${i}` }] })),
    );
    expect(results.map((r) => r.status).every((s) => s === 200)).toBe(true);
    const versions = results.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: n }, (_, i) => i + 2));
    const hist = await request(h.app).get(`/fhir/Patient/${p.id}/_history?_count=100`);
    expect(hist.body.total).toBe(n + 1);
    const families = new Set(hist.body.entry.map((e: { resource: { name: { family: string }[] } }) => e.resource.name[0].family));
    expect(families.size).toBe(n + 1);
    const current = await request(h.app).get(`/fhir/Patient/${p.id}`);
    expect(current.body.meta.versionId).toBe(String(n + 1));
  });
});
