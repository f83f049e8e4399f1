import { withTransactions } from '../helpers/engines';
import { eachEngine, FHIR_JSON, INS, request } from '../helpers/http';

/** An INS identifies one person: two Patients never carry the same one, also when written at the same time. */
eachEngine('one Patient per INS', (h) => {
  const withIns = (family: string, value: string, system = INS) => ({ resourceType: 'Patient', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.7', value: `ipp-${family}` }, { system, value }], name: [{ family }] });
  const post = (body: unknown) => request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
  const put = (id: string, body: object) => request(h.app).put(`/fhir/Patient/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...body, id }));
  const expectTaken = (res: { status: number; body: { issue: { code: string; diagnostics: string; expression?: string[] }[] } }, value: string) => {
    expect(res.status).toBe(409);
    expect(res.body.issue[0].code).toBe('duplicate');
    expect(res.body.issue[0].diagnostics).toContain(`${INS}|${value}`);
    expect(res.body.issue[0].expression).toEqual(['Patient.identifier[1]']);
  };

  test('a second Patient with the same INS is refused with 409 naming the identifier, by create, update and patch', async () => {
    const first = await post(withIns('Premier', '180017500000101'));
    expect(first.status).toBe(201);
    expectTaken(await post(withIns('Second', '180017500000101')), '180017500000101');
    const other = await post(withIns('Autre', '280027500000202'));
    expectTaken(await put(other.body.id, withIns('Autre', '180017500000101')), '180017500000101');
    const patch = await request(h.app).patch(`/fhir/Patient/${other.body.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/identifier/1/value', value: '180017500000101' }]));
    expectTaken(patch, '180017500000101');
    // the holder itself may be written again with it; an INS-NIA is one too; the same value in another system is another identifier
    expect((await put(first.body.id, withIns('Premier', '180017500000101'))).status).toBe(200);
    expect((await post(withIns('Nia', '180017500000101', 'urn:oid:1.2.250.1.213.1.4.9'))).status).toBe(201);
    const nia = await post(withIns('Nia2', '180017500000101', 'urn:oid:1.2.250.1.213.1.4.9'));
    expect(nia.status).toBe(409);
    expect(nia.body.issue[0].diagnostics).toContain('urn:oid:1.2.250.1.213.1.4.9|180017500000101');
  });

  test('the INS is free again once its Patient is deleted or no longer carries it', async () => {
    const holder = await post(withIns('Parti', '180017500000303'));
    expect((await request(h.app).delete(`/fhir/Patient/${holder.body.id}`)).status).toBe(204);
    const next = await post(withIns('Suivant', '180017500000303'));
    expect(next.status).toBe(201);
    expect((await put(next.body.id, withIns('Suivant', '180017500000404'))).status).toBe(200);
    expect((await post(withIns('Troisieme', '180017500000303'))).status).toBe(201);
  });

  test('eight creates of the same INS sent at once store one Patient', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => post(withIns(`Course${i}`, '180017500000505'))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 201)) expectTaken(r, '180017500000505');
    const stored = await request(h.app).get(`/fhir/Patient?identifier=${INS}|180017500000505&_total=accurate`);
    expect(stored.body.total).toBe(1);
  });

  withTransactions(h.engine)('within a transaction too', async () => {
    const tx = await request(h.app)
      .post('/fhir')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: ['A', 'B'].map((f) => ({ request: { method: 'POST', url: 'Patient' }, resource: withIns(`Tx${f}`, '180017500000606') })) }));
    expect(tx.status).toBe(409);
    expect(tx.body.issue[0].expression).toEqual(['Bundle.entry[1].resource.identifier[1]']);
    expect((await post(withIns('ApresTx', '180017500000606'))).status).toBe(201);
  });
});
