import { BASE, eachEngine, ids, INS, patient, request } from '../helpers/http';
import { frPatient, frPractitioner, insNir, LOINC, observationCategory } from '../helpers/french';

eachEngine('search', (h) => {
  const search = (q: string, prefer?: string) => {
    const r = request(h.app).get(`/fhir/${q}`);
    return prefer ? r.set('Prefer', prefer) : r;
  };
  const found = async (q: string) => {
    const res = await search(q);
    expect(res.status).toBe(200);
    return ids(res.body).sort();
  };
  const f: Record<string, { id: string }> = {};
  // Hélène's INS-NIR; two other Patients carry the same number without its system, or in another one
  const NIR = insNir('2800875123456');

  beforeAll(async () => {
    f.helene = await h.create(frPatient({ family: 'Lefèvre', given: ['Hélène'], gender: 'female', birthDate: '1980-08-01', ins: { nir: '2800875123456', birthPlace: { insee: '75056', city: 'Paris' } } }));
    f.helene2 = await h.create(patient('HELENE', { name: [{ family: 'DUPONT-HÉLÈNE', given: ['Anne'] }], birthDate: '1980-12-31', gender: 'female' }));
    f.noSystem = await h.create(patient('Code', { identifier: [{ value: NIR }], birthDate: '1981-01-01', gender: 'male' }));
    f.otherSystem = await h.create(patient('Other', { identifier: [{ system: 'urn:test:other', value: NIR }], birthDate: '1979-12-31' }));
    f.gp = await h.create(frPractitioner({ family: 'Généraliste', given: 'Paul', rpps: '10003000003', prefix: 'M' }));
    f.withGp = await h.create(patient('Suivi', { generalPractitioner: [{ reference: `Practitioner/${f.gp.id}` }], deceasedBoolean: false }));
    f.dead = await h.create({ resourceType: 'Patient', name: [{ family: 'Défunt' }], deceasedDateTime: '2020-02-02T00:30:00+01:00' });
    f.obsPeriod = await h.create({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2339-0' }] }, subject: { reference: `Patient/${f.helene.id}` }, effectivePeriod: { start: '2024-03-01T08:00:00Z', end: '2024-03-01T09:00:00Z' } });
    // a smoker since May 2024: a period that has not ended
    f.obsOpen = await h.create({
      resourceType: 'Observation',
      status: 'final',
      category: observationCategory('social-history'),
      code: { coding: [{ system: LOINC, code: '72166-2', display: 'Tobacco smoking status' }] },
      subject: { reference: `Patient/${f.helene2.id}` },
      effectivePeriod: { start: '2024-05-01' },
      valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '77176002', display: 'Smoker' }] },
    });
    f.obsExt = await h.create({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '2339-0' }] },
      subject: { reference: `${BASE}/Patient/${f.helene.id}` },
      effectiveDateTime: '2024-03-02',
    });
    // a superseded version and a deleted resource must never match
    const old = await h.create(patient('Ancien', { birthDate: '1950-01-01' }));
    await request(h.app).put(`/fhir/Patient/${old.id}`).set('Content-Type', 'application/fhir+json').send(JSON.stringify({ ...old, name: [{ family: 'Nouveau' }] }));
    f.changed = old;
    const gone = await h.create(patient('Supprimé', { birthDate: '1950-01-01' }));
    await request(h.app).delete(`/fhir/Patient/${gone.id}`);
  });

  test('a searchset with total, self link and match entries', async () => {
    const res = await search('Patient?gender=female');
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('searchset');
    expect(res.body.total).toBe(2);
    expect(res.body.link[0]).toEqual({ relation: 'self', url: `${BASE}/Patient?gender=female&_count=20` });
    expect(res.body.entry[0].search).toEqual({ mode: 'match' });
    expect(res.body.entry[0].fullUrl).toBe(`${BASE}/Patient/${res.body.entry[0].resource.id}`);
  });

  test('token: system|code, code alone, |code and system|', async () => {
    expect(await found(`Patient?identifier=${INS}|${NIR}`)).toEqual([f.helene.id]);
    expect(await found(`Patient?identifier=${NIR}`)).toEqual([f.helene.id, f.noSystem.id, f.otherSystem.id].sort());
    expect(await found(`Patient?identifier=|${NIR}`)).toEqual([f.noSystem.id]);
    expect(await found('Patient?identifier=urn:test:other|')).toEqual([f.otherSystem.id]);
    expect(await found(`Patient?identifier=${INS}|0000`)).toEqual([]);
    expect(await found('Patient?gender=male')).toEqual([f.noSystem.id]);
    // R4's expression is `deceased.exists() and deceased != false`: no deceased[x] indexes false
    expect(await found('Patient?deceased=true')).toEqual([f.dead.id]);
    expect(await found('Patient?deceased=false')).toEqual([f.helene.id, f.helene2.id, f.noSystem.id, f.otherSystem.id, f.withGp.id, f.changed.id].sort());
    expect(await found('Observation?code=http://loinc.org|2339-0')).toEqual([f.obsPeriod.id, f.obsExt.id].sort());
  });

  test('string: case and accents ignored, prefix by default, :exact and :contains', async () => {
    expect(await found('Patient?family=lefevre')).toEqual([f.helene.id]);
    expect(await found('Patient?family=LEFÈV')).toEqual([f.helene.id]);
    expect(await found('Patient?name=helene')).toEqual([f.helene.id]);
    expect(await found('Patient?name:contains=helene')).toEqual([f.helene.id, f.helene2.id].sort());
    expect(await found('Patient?family:exact=Lefèvre')).toEqual([f.helene.id]);
    expect(await found('Patient?family:exact=lefevre')).toEqual([]);
    expect(await found('Patient?name=ancien')).toEqual([]);
    expect(await found('Patient?name=nouveau')).toEqual([f.changed.id]);
    expect(await found('Patient?name=supprim')).toEqual([]);
  });

  test('reference: Type/id, bare id, :Type, absolute URL on this server', async () => {
    expect(await found(`Patient?general-practitioner=Practitioner/${f.gp.id}`)).toEqual([f.withGp.id]);
    expect(await found(`Patient?general-practitioner=${f.gp.id}`)).toEqual([f.withGp.id]);
    expect(await found(`Patient?general-practitioner:Practitioner=${f.gp.id}`)).toEqual([f.withGp.id]);
    expect(await found(`Observation?subject=Patient/${f.helene.id}`)).toEqual([f.obsPeriod.id, f.obsExt.id].sort());
    expect(await found(`Observation?patient=${BASE}/Patient/${f.helene.id}`)).toEqual([f.obsPeriod.id, f.obsExt.id].sort());
    const bad = await search(`Patient?general-practitioner:Observation=${f.gp.id}`);
    expect(bad.status).toBe(400);
  });

  test('date: implicit ranges of the precision, and every prefix', async () => {
    expect(await found('Patient?birthdate=1980')).toEqual([f.helene.id, f.helene2.id].sort());
    expect(await found('Patient?birthdate=1980-08')).toEqual([f.helene.id]);
    expect(await found('Patient?birthdate=1980-08-01')).toEqual([f.helene.id]);
    expect(await found('Patient?birthdate=lt1980-08-01')).toEqual([f.otherSystem.id, f.changed.id].sort());
    expect(await found('Patient?birthdate=le1980-08-01')).toEqual([f.helene.id, f.otherSystem.id, f.changed.id].sort());
    expect(await found('Patient?birthdate=gt1980-12-31')).toEqual([f.noSystem.id]);
    expect(await found('Patient?birthdate=ge1980-12-31')).toEqual([f.helene2.id, f.noSystem.id].sort());
    expect(await found('Patient?birthdate=ne1980')).toEqual([f.noSystem.id, f.otherSystem.id, f.changed.id].sort());
    expect(await found('Patient?birthdate=sa1980')).toEqual([f.noSystem.id]);
    expect(await found('Patient?birthdate=eb1980')).toEqual([f.otherSystem.id, f.changed.id].sort());
    expect(await found('Patient?birthdate=1979-12-31')).toEqual([f.otherSystem.id]);
    // 2020-02-02T00:30+01:00 is 23:30 UTC on February 1st
    expect(await found('Patient?death-date=2020-02-01')).toEqual([f.dead.id]);
    expect(await found('Patient?death-date=2020-02-02')).toEqual([]);
    // periods: eq needs the whole period inside the day; an open period never ends
    expect(await found('Observation?date=2024-03-01')).toEqual([f.obsPeriod.id]);
    expect(await found('Observation?date=2024-03')).toEqual([f.obsPeriod.id, f.obsExt.id].sort());
    expect(await found('Observation?date=ge2030-01-01')).toEqual([f.obsOpen.id]);
    expect(await found('Observation?date=2024')).toEqual([f.obsPeriod.id, f.obsExt.id].sort());
    expect(await found('Patient?birthdate=1980&birthdate=lt1980-09')).toEqual([f.helene.id]);
    expect((await search('Patient?birthdate=1980-13-01')).status).toBe(400);
    expect((await search('Patient?birthdate=xx2020')).status).toBe(400);
  });

  test('_id, _lastUpdated, several values (or) and repeated parameters (and), :missing', async () => {
    expect(await found(`Patient?_id=${f.helene.id},${f.noSystem.id}`)).toEqual([f.helene.id, f.noSystem.id].sort());
    expect(await found(`Patient?_id=${f.helene.id}&gender=male`)).toEqual([]);
    expect(await found('Patient?gender=male,female')).toEqual([f.helene.id, f.helene2.id, f.noSystem.id].sort());
    expect(await found('Patient?_lastUpdated=ge2000-01-01')).toEqual([f.helene.id, f.helene2.id, f.noSystem.id, f.otherSystem.id, f.withGp.id, f.dead.id, f.changed.id].sort());
    expect(await found('Patient?_lastUpdated=lt2000-01-01')).toEqual([]);
    expect(await found('Patient?general-practitioner:missing=false')).toEqual([f.withGp.id]);
    expect(await found('Patient?gender:missing=true')).toEqual([f.otherSystem.id, f.withGp.id, f.dead.id, f.changed.id].sort());
  });

  test(':in and :not-in with value sets expanded from the loaded packages', async () => {
    const vs = 'http://hl7.org/fhir/ValueSet/administrative-gender';
    expect(await found(`Patient?gender:in=${vs}`)).toEqual([f.helene.id, f.helene2.id, f.noSystem.id].sort());
    expect(await found(`Patient?gender:not-in=${vs}`)).toEqual([f.otherSystem.id, f.withGp.id, f.dead.id, f.changed.id].sort());
    const unknown = await search('Patient?gender:in=http://example.org/no-such-vs');
    expect(unknown.status).toBe(400);
    // LOINC is not loaded here: an exact answer is impossible, so it is refused rather than guessed
    const loinc = await search('Observation?code:in=http://hl7.org/fhir/ValueSet/observation-codes');
    expect(loinc.status).toBe(400);
    expect(loinc.body.issue[0].diagnostics).toMatch(/cannot be expanded completely/);
  });

  test('unknown parameters: reported under lenient handling, refused under strict', async () => {
    const lenient = await search('Patient?gender=male&colour=blue');
    expect(lenient.status).toBe(200);
    expect(ids(lenient.body)).toEqual([f.noSystem.id]);
    const outcome = lenient.body.entry.find((e: { search: { mode: string } }) => e.search.mode === 'outcome');
    expect(outcome.resource.resourceType).toBe('OperationOutcome');
    expect(outcome.resource.issue[0].diagnostics).toMatch(/colour/);
    expect(lenient.body.link[0].url).not.toMatch(/colour/);
    const strict = await search('Patient?gender=male&colour=blue', 'handling=strict');
    expect(strict.status).toBe(400);
    expect(strict.body.issue[0].diagnostics).toMatch(/colour/);
    expect((await search('Patient?gender:fuzzy=male')).status).toBe(400);
    expect((await search('Patient?gender.name=x')).status).toBe(400); // only reference parameters chain
  });

  test('POST _search with a form body gives the same answer as GET', async () => {
    const res = await request(h.app).post('/fhir/Patient/_search').set('Content-Type', 'application/x-www-form-urlencoded').send('family=lefevre');
    expect(res.status).toBe(200);
    expect(ids(res.body)).toEqual([f.helene.id]);
  });

  test('_count and paging links stay correct while data changes', async () => {
    const sys = 'urn:test:paging';
    const made = [];
    for (let i = 0; i < 7; i++) made.push((await h.create(patient(`Page${i}`, { identifier: [{ system: sys, value: 'p' }] }))).id);
    // a total is counted when asked for; a page that does not hold every match gives none otherwise
    expect((await search(`Patient?identifier=${sys}|p&_count=3`)).body.total).toBeUndefined();
    expect((await search(`Patient?identifier=${sys}|p&_count=7`)).body.total).toBe(7);
    expect((await search(`Patient?identifier=${sys}|p&_count=3&_total=estimate`)).body.total).toBe(7);
    const first = await search(`Patient?identifier=${sys}|p&_count=3&_total=accurate`);
    expect(first.body.total).toBe(7);
    expect(ids(first.body)).toHaveLength(3);
    // data changes between pages: an early resource is updated, one not yet seen is deleted, one is added
    const seen = [...ids(first.body)];
    await request(h.app).put(`/fhir/Patient/${seen[0]}`).set('Content-Type', 'application/fhir+json').send(JSON.stringify({ ...patient('Changed', { identifier: [{ system: sys, value: 'p' }] }), id: seen[0] }));
    const notYetSeen = made.find((id) => !seen.includes(id))!;
    await request(h.app).delete(`/fhir/Patient/${notYetSeen}`);
    const added = (await h.create(patient('Late', { identifier: [{ system: sys, value: 'p' }] }))).id;
    let body = first.body;
    for (;;) {
      const next = body.link.find((l: { relation: string }) => l.relation === 'next');
      if (!next) break;
      expect(next.url).toContain('_count=3');
      body = (await request(h.app).get(`/fhir${next.url.slice(BASE.length)}`)).body;
      seen.push(...ids(body));
    }
    expect(new Set(seen).size).toBe(seen.length); // no resource twice
    const expected = [...made.filter((id) => id !== notYetSeen), added];
    expect(seen.sort()).toEqual(expected.sort()); // none skipped
    const prev = body.link.find((l: { relation: string }) => l.relation === 'previous');
    expect(prev?.url).toContain('_count=3');
    const back = await request(h.app).get(`/fhir${prev.url.slice(BASE.length)}`);
    expect(ids(back.body)).toHaveLength(3);
    const none = await search(`Patient?identifier=${sys}|p&_count=0`);
    expect(none.body.total).toBe(7);
    expect(none.body.entry).toBeUndefined(); // R4 JSON has no empty arrays
    expect((await search('Patient?_count=-1')).status).toBe(400);
  });
});
