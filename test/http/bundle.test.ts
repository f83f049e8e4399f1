import { withoutTransactions, withTransactions } from '../helpers/engines';
import { BASE, eachEngine, FHIR_JSON, ids, INS, patient, request } from '../helpers/http';
import { frPatient, insNir } from '../helpers/french';

eachEngine('batch and transaction', (h) => {
  const postBundle = (bundle: unknown) => request(h.app).post('/fhir').set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle));
  const txTest = withTransactions(h.engine);
  const count = async (q: string) => (await request(h.app).get(`/fhir/${q}`)).body.total as number;

  test('a reference to a urn:uuid that nothing resolves is refused: that batch entry, a plain create; a stored Bundle keeps its own', async () => {
    const u1 = 'urn:uuid:6e2c7a10-0000-4000-8000-00000000aa01';
    const obsTo = (ref: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'pendante' }, subject: { reference: ref } });
    // a batch does not resolve references between its entries
    const batch = await postBundle({ resourceType: 'Bundle', type: 'batch', entry: [{ fullUrl: u1, request: { method: 'POST', url: 'Patient' }, resource: patient('Pendante') }, { request: { method: 'POST', url: 'Observation' }, resource: obsTo(u1) }] });
    expect(batch.status).toBe(200);
    expect(batch.body.entry[0].response.status).toBe('201 Created');
    expect(batch.body.entry[1].response.status).toBe('400 Bad Request');
    expect(batch.body.entry[1].response.outcome.issue[0].expression).toEqual(['Bundle.entry[1].resource.subject.reference']);
    expect(await count('Observation?code:text=pendante&_total=accurate&_count=0')).toBe(0);
    // a plain create
    const plain = await request(h.app).post('/fhir/Observation').set('Content-Type', FHIR_JSON).send(JSON.stringify(obsTo(u1)));
    expect(plain.status).toBe(400);
    expect(plain.body.issue[0].expression).toEqual(['Observation.subject.reference']);
    // a document Bundle, stored as a resource, keeps the references between its entries
    const document = await request(h.app)
      .post('/fhir/Bundle')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: u1, resource: patient('DansLeDocument') }, { fullUrl: 'urn:uuid:6e2c7a10-0000-4000-8000-00000000aa03', resource: obsTo(u1) }] }));
    expect(document.status).toBe(201);
  });

  txTest('a transaction whose urn:uuid reference names none of its entries is refused whole', async () => {
    const obsTo = (ref: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'pendante' }, subject: { reference: ref } });
    const tx = await postBundle({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Patient' }, resource: patient('PendanteTx') }, { request: { method: 'POST', url: 'Observation' }, resource: obsTo('urn:uuid:6e2c7a10-0000-4000-8000-00000000aa02') }] });
    expect(tx.status).toBe(400);
    expect(tx.body.issue[0].expression).toEqual(['Bundle.entry[1].resource.subject.reference']);
    expect(await count('Patient?name=pendantetx&_total=accurate&_count=0')).toBe(0);
  });

  test('a batch runs entries independently and reports each one', async () => {
    const p = await h.create(patient('Batch'));
    const res = await postBundle({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'POST', url: 'Patient' }, resource: patient('BatchNew') },
        { request: { method: 'GET', url: `Patient/${p.id}` } },
        { request: { method: 'GET', url: 'Patient/missing' } },
        { request: { method: 'PUT', url: `Patient/${p.id}` }, resource: { ...p, id: 'mismatch' } },
        { request: { method: 'DELETE', url: `Patient/${p.id}` } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    const st = res.body.entry.map((e: { response: { status: string } }) => e.response.status);
    expect(st).toEqual(['201 Created', '200 OK', '404 Not Found', '400 Bad Request', '204 No Content']);
    expect(res.body.entry[0].response.location).toMatch(/^http:\/\/fhir\.test\/fhir\/Patient\/[^/]+\/_history\/1$/);
    expect(res.body.entry[2].response.outcome.resourceType).toBe('OperationOutcome');
    expect(res.body.entry[3].response.outcome.issue[0].expression).toEqual(['Bundle.entry[3].resource.id']);
  });

  txTest('transaction: urn:uuid references are rewritten everywhere, including in extensions', async () => {
    const res = await postBundle({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:3f5c1a2e-0000-4000-8000-000000000002',
          request: { method: 'POST', url: 'Observation' },
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'glycémie' },
            subject: { reference: 'urn:uuid:3f5c1a2e-0000-4000-8000-000000000001' },
            extension: [{ url: 'http://example.org/ext', valueReference: { reference: 'urn:uuid:3f5c1a2e-0000-4000-8000-000000000001' } }],
          },
        },
        { fullUrl: 'urn:uuid:3f5c1a2e-0000-4000-8000-000000000001', request: { method: 'POST', url: 'Patient' }, resource: patient('Transac') },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    const [obsEntry, patEntry] = res.body.entry;
    expect(obsEntry.response.status).toBe('201 Created');
    expect(patEntry.response.status).toBe('201 Created');
    expect(obsEntry.response.etag).toBe('W/"1"');
    const patientId = patEntry.resource.id;
    expect(obsEntry.resource.subject.reference).toBe(`Patient/${patientId}`);
    expect(obsEntry.resource.extension[0].valueReference.reference).toBe(`Patient/${patientId}`);
    expect(ids((await request(h.app).get(`/fhir/Observation?subject=Patient/${patientId}`)).body)).toEqual([obsEntry.resource.id]);
  });

  txTest('transaction: all or nothing when an entry fails', async () => {
    const before = await count('Patient?family=Atomique');
    const existing = await h.create(patient('Atomique'));
    const res = await postBundle({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'POST', url: 'Patient' }, resource: patient('Atomique') },
        { request: { method: 'PUT', url: `Patient/${existing.id}` }, resource: { ...existing, gender: 'female' } },
        { request: { method: 'DELETE', url: `Patient/${existing.id}` } },
        { request: { method: 'PUT', url: `Patient/${existing.id}`, ifMatch: 'W/"7"' }, resource: { ...existing, gender: 'male' } },
      ],
    });
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[3]']);
    expect(await count('Patient?family=Atomique')).toBe(before + 1);
    const after = await request(h.app).get(`/fhir/Patient/${existing.id}`);
    expect(after.status).toBe(200);
    expect(after.body.meta.versionId).toBe('1');
    expect(after.body.gender).toBeUndefined();
  });

  txTest('transaction: order DELETE, POST, PUT, GET; ifNoneExist; conditional references; ifMatch', async () => {
    const toDelete = await h.create(patient('ToDelete'));
    const nir = insNir('2851169123045');
    const withIns = (family: string) => frPatient({ family, given: ['Marie'], gender: 'female', birthDate: '1985-11-20', ins: { nir: '2851169123045', birthPlace: { insee: '69123', city: 'Lyon' } } });
    const kept = await h.create(withIns('Kept'));
    const res = await postBundle({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'GET', url: `Patient?_id=${toDelete.id}` } },
        { request: { method: 'PUT', url: `Patient/${kept.id}`, ifMatch: 'W/"1"' }, resource: { ...kept, address: [{ use: 'home', city: 'Lyon', country: 'France' }] } },
        { request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${INS}|${nir}` }, resource: withIns('Duplicate') },
        {
          request: { method: 'POST', url: 'Encounter' },
          resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient?identifier=${INS}|${nir}` } },
        },
        { request: { method: 'DELETE', url: `Patient/${toDelete.id}` } },
      ],
    });
    expect(res.status).toBe(200);
    const [get, put, post, enc, del] = res.body.entry;
    expect(del.response.status).toBe('204 No Content');
    expect(get.response.status).toBe('200 OK');
    expect(get.resource.total).toBe(0); // the GET ran after the DELETE
    expect(put.response.status).toBe('200 OK');
    expect(put.resource.meta.versionId).toBe('2');
    expect(post.response.status).toBe('200 OK');
    expect(post.resource.id).toBe(kept.id);
    expect(enc.resource.subject.reference).toBe(`Patient/${kept.id}`);

    const unresolved = await postBundle({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'POST', url: 'Encounter' }, resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient?identifier=${INS}|nobody` } } }],
    });
    expect(unresolved.status).toBe(412);
  });

  txTest('transaction: a Bundle of 1,000 entries', async () => {
    const entry = Array.from({ length: 1000 }, (_, i) => ({
      fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      request: { method: 'POST', url: i % 2 === 0 ? 'Patient' : 'Observation' },
      resource:
        i % 2 === 0
          ? patient(`Mille${i}`, { identifier: [{ system: 'urn:test:thousand', value: String(i) }] })
          : { resourceType: 'Observation', status: 'final', code: { text: 'poids' }, subject: { reference: `urn:uuid:00000000-0000-4000-8000-${String(i - 1).padStart(12, '0')}` } },
    }));
    const res = await postBundle({ resourceType: 'Bundle', type: 'transaction', entry });
    expect(res.status).toBe(200);
    expect(res.body.entry).toHaveLength(1000);
    expect(res.body.entry.every((e: { response: { status: string } }) => e.response.status === '201 Created')).toBe(true);
    expect(await count('Patient?identifier=urn:test:thousand|&_count=0')).toBe(500);
    const pid = res.body.entry[998].resource.id;
    expect(res.body.entry[999].resource.subject.reference).toBe(`Patient/${pid}`);
  }, 120000);

  txTest('the CapabilityStatement lists transaction where the store makes transactions atomic', async () => {
    const cs = await request(h.app).get('/fhir/metadata');
    expect(cs.body.rest[0].interaction).toContainEqual({ code: 'transaction' });
  });

  withoutTransactions(h.engine)('a transaction is refused with an OperationOutcome where the store cannot make it atomic, and the CapabilityStatement omits it', async () => {
    const before = await count('Patient?family=Refused');
    const res = await postBundle({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Patient' }, resource: patient('Refused') }] });
    expect(res.status).toBe(501);
    expect(res.body.issue[0].code).toBe('not-supported');
    expect(res.body.issue[0].diagnostics).toMatch(/transaction/i);
    expect(await count('Patient?family=Refused')).toBe(before);
    const cs = await request(h.app).get('/fhir/metadata');
    expect(cs.body.rest[0].interaction).not.toContainEqual({ code: 'transaction' });
  });

  test('bundles that cannot be processed answer 400 with where the problem is', async () => {
    expect((await postBundle({ resourceType: 'Bundle', type: 'collection' })).status).toBe(400);
    expect((await postBundle(patient('x'))).status).toBe(400);
    const noMethod = await postBundle({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { url: 'Patient' } }] });
    expect(noMethod.status).toBe(400);
    expect(noMethod.body.issue[0].expression).toEqual(['Bundle.entry[0].request.method']);
    const nested = await postBundle({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'POST', url: '' }, resource: { resourceType: 'Bundle', type: 'batch' } }] });
    expect(nested.status).toBe(400);
    const abs = await postBundle({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `${BASE}/Patient?_count=1` } }] });
    expect(abs.body.entry[0].response.status).toBe('200 OK');
  });
});
