import { withTransactions } from '../helpers/engines';
import { eachEngine, FHIR_JSON, INS, request } from '../helpers/http';
import { frPatient, INS_NIA, insNir } from '../helpers/french';

/** An INS identifies one person: two Patients never carry the same one, also when written at the same time. */
eachEngine('one Patient per INS', (h) => {
  // a Patient INS as a hospital writes it: its IPP first, then the INS (13 digits and their key); sex and month of birth are the NIR's
  const withIns = (family: string, digits: string, system = INS) =>
    frPatient({
      family,
      given: [digits[0] === '1' ? 'Jean' : 'Jeanne'],
      gender: digits[0] === '1' ? 'male' : 'female',
      birthDate: `19${digits.slice(1, 3)}-${digits.slice(3, 5)}-15`,
      ins: { ...(system === INS_NIA ? { nia: digits } : { nir: digits }), birthPlace: { insee: '75056', city: 'Paris' } },
      ipp: `ipp-${family}`,
    });
  const post = (body: unknown) => request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
  const put = (id: string, body: object) => request(h.app).put(`/fhir/Patient/${id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ ...body, id }));
  const expectTaken = (res: { status: number; body: { issue: { code: string; diagnostics: string; expression?: string[] }[] } }, value: string) => {
    expect(res.status).toBe(409);
    expect(res.body.issue[0].code).toBe('duplicate');
    expect(res.body.issue[0].diagnostics).toContain(`${INS}|${value}`);
    expect(res.body.issue[0].expression).toEqual(['Patient.identifier[1]']);
  };

  test('a second Patient with the same INS is refused with 409 naming the identifier, by create, update and patch', async () => {
    const first = await post(withIns('Premier', '1800175000001'));
    expect(first.status).toBe(201);
    expectTaken(await post(withIns('Second', '1800175000001')), insNir('1800175000001'));
    const other = await post(withIns('Autre', '2800275000002'));
    expectTaken(await put(other.body.id, withIns('Autre', '1800175000001')), insNir('1800175000001'));
    const patch = await request(h.app).patch(`/fhir/Patient/${other.body.id}`).set('Content-Type', 'application/json-patch+json').send(JSON.stringify([{ op: 'replace', path: '/identifier/1/value', value: insNir('1800175000001') }]));
    expectTaken(patch, insNir('1800175000001'));
    // the holder itself may be written again with it; an INS-NIA is one too; the same value in another system is another identifier
    expect((await put(first.body.id, withIns('Premier', '1800175000001'))).status).toBe(200);
    expect((await post(withIns('Nia', '1800175000001', INS_NIA))).status).toBe(201);
    const nia = await post(withIns('Nia2', '1800175000001', INS_NIA));
    expect(nia.status).toBe(409);
    expect(nia.body.issue[0].diagnostics).toContain(`${INS_NIA}|${insNir('1800175000001')}`);
  });

  test('the INS is free again once its Patient is deleted or no longer carries it', async () => {
    const holder = await post(withIns('Parti', '1800175000003'));
    expect((await request(h.app).delete(`/fhir/Patient/${holder.body.id}`)).status).toBe(204);
    const next = await post(withIns('Suivant', '1800175000003'));
    expect(next.status).toBe(201);
    expect((await put(next.body.id, withIns('Suivant', '1800175000004'))).status).toBe(200);
    expect((await post(withIns('Troisieme', '1800175000003'))).status).toBe(201);
  });

  test('eight creates of the same INS sent at once store one Patient', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => post(withIns(`Course${i}`, '1800175000005'))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 201)) expectTaken(r, insNir('1800175000005'));
    const stored = await request(h.app).get(`/fhir/Patient?identifier=${INS}|${insNir('1800175000005')}&_total=accurate`);
    expect(stored.body.total).toBe(1);
  });

  withTransactions(h.engine)('within a transaction too', async () => {
    const tx = await request(h.app)
      .post('/fhir')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: ['A', 'B'].map((f) => ({ request: { method: 'POST', url: 'Patient' }, resource: withIns(`Tx${f}`, '1800175000006') })) }));
    expect(tx.status).toBe(409);
    expect(tx.body.issue[0].expression).toEqual(['Bundle.entry[1].resource.identifier[1]']);
    expect((await post(withIns('ApresTx', '1800175000006'))).status).toBe(201);
  });
});
