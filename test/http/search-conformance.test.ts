import { BASE, eachEngine, FHIR_JSON, ids, request } from '../helpers/http';
import { bloodPressure, CONSULTATION_NOTE, frPatient, frPractitioner, insNir, LOINC, pdsmDocument, RPPS, UCUM } from '../helpers/french';

/** Émile Zola's social security number (NIR), Zoé Abel's INS-NIR, the RPPS numbers of their general practitioners */
const NSS = 'urn:oid:1.2.250.1.213.1.4.13';
const NIR1 = insNir('1800175000001');
const NIR2 = insNir('2900275000002');
const RPPS1 = '10001000019';
const RPPS2 = '10002000017';

eachEngine(
  'search conformance',
  (h) => {
    const get = (q: string) => request(h.app).get(`/fhir/${q}`);
    const found = async (q: string) => {
      const res = await get(q);
      if (res.status !== 200) throw new Error(`${q}: ${res.status} ${JSON.stringify(res.body)}`);
      return ids(res.body).sort();
    };
    const sorted = async (q: string) => ids((await get(q)).body);
    const f: Record<string, { id: string }> = {};
    const obs = (code: string, extra: Record<string, unknown>) => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, ...extra });

    beforeAll(async () => {
      f.gp = await h.create(frPractitioner({ family: 'Médecin', given: 'Paul', rpps: RPPS1, prefix: 'M' }));
      f.gp2 = await h.create(frPractitioner({ family: 'Autre', given: 'Anne', rpps: RPPS2, prefix: 'MME' }));
      f.org = await h.create({ resourceType: 'Organization', name: 'Clinique du Parc' });
      // no INS yet: the social security number of his Carte Vitale
      f.p1 = await h.create({
        resourceType: 'Patient',
        identifier: [{ use: 'official', system: NSS, value: NIR1, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NH' }], text: 'NIR' } }],
        name: [{ family: 'Zola', given: ['Émile', 'Adèle'] }],
        birthDate: '1980-01-01',
        generalPractitioner: [{ reference: `Practitioner/${f.gp.id}` }],
        managingOrganization: { reference: `Organization/${f.org.id}` },
      });
      f.p2 = await h.create({ ...frPatient({ family: 'Abel', given: ['Zoé'], gender: 'female', birthDate: '1990-02-02', ins: { nir: '2900275000002', birthPlace: { insee: '75056', city: 'Paris' } } }), generalPractitioner: [{ reference: `Practitioner/${f.gp2.id}` }] });
      f.p3 = await h.create({ resourceType: 'Patient', name: [{ family: 'Martin', given: ['Bruno'] }] });
      f.glu1 = await h.create(obs('2339-0', { subject: { reference: `Patient/${f.p1.id}` }, effectiveDateTime: '2024-05-01T08:00:00Z', valueQuantity: { value: 5.4, unit: 'mmol/L', system: UCUM, code: 'mmol/L' }, performer: [{ reference: `Practitioner/${f.gp.id}` }] }));
      f.glu2 = await h.create(obs('2339-0', { subject: { reference: `Patient/${f.p1.id}` }, effectiveDateTime: '2024-05-03T08:00:00Z', valueQuantity: { value: 110, unit: 'mg/dL', system: UCUM, code: 'mg/dL' } }));
      f.glu3 = await h.create(obs('2339-0', { subject: { reference: `Patient/${f.p2.id}` }, effectiveDateTime: '2024-05-02T08:00:00Z', valueQuantity: { value: 7.1, unit: 'mmol/L', system: UCUM, code: 'mmol/L' } }));
      f.bp = await h.create(bloodPressure({ patient: `Patient/${f.p2.id}`, at: '2024-05-02T09:00:00Z', systolic: 130, diastolic: 80 }));
      f.text = await h.create({ resourceType: 'Observation', status: 'final', code: { text: 'Glycémie à jeun', coding: [{ system: LOINC, code: '1558-6', display: 'Fasting glucose' }] }, subject: { reference: `Patient/${f.p3.id}` } });
      f.risk1 = await h.create({ resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${f.p1.id}` }, prediction: [{ probabilityDecimal: 0.52 }] });
      f.risk2 = await h.create({ resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${f.p2.id}` }, prediction: [{ probabilityDecimal: 0.547 }] });
      f.vs1 = await h.create({ resourceType: 'ValueSet', status: 'active', url: 'http://esante.example/fhir/ValueSet/glucose' });
      f.vs2 = await h.create({ resourceType: 'ValueSet', status: 'active', url: 'http://esante.example/fhir/ValueSet/glucose/fasting' });
      f.vs3 = await h.create({ resourceType: 'ValueSet', status: 'active', url: 'http://esante.example/other' });
      // a consultation note the GP's software publishes inline; the person as that software knows them names another GP
      f.doc = await h.create(
        pdsmDocument({
          patient: `Patient/${f.p1.id}`,
          sourcePatient: { id: 'inner', ipp: 'cab-0042', family: 'Zola', given: 'Émile', generalPractitioner: `Practitioner/${f.gp2.id}` },
          author: { family: 'Médecin', given: 'Paul', rpps: RPPS1, prefix: 'M' },
          uniqueId: 'urn:oid:1.2.250.1.213.1.1.9.1001.1',
          type: CONSULTATION_NOTE,
          title: 'Compte rendu de consultation du 4 mai 2024',
          date: '2024-05-04T10:00:00+02:00',
          period: { start: '2024-05-04T09:30:00+02:00', end: '2024-05-04T10:00:00+02:00' },
          inline: '%PDF-1.7 compte rendu de consultation',
        }),
      );
      f.enc = await h.create({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${f.p1.id}` }, serviceProvider: { reference: `Organization/${f.org.id}` } });
    });

    test('number: precision of the value and every prefix', async () => {
      expect(await found('RiskAssessment?probability=0.5')).toEqual([f.risk1.id, f.risk2.id].sort()); // [0.45, 0.55)
      expect(await found('RiskAssessment?probability=0.52')).toEqual([f.risk1.id]); // [0.515, 0.525)
      expect(await found('RiskAssessment?probability=0.55')).toEqual([f.risk2.id]); // 0.547 is in [0.545, 0.555)
      expect(await found('RiskAssessment?probability=gt0.52')).toEqual([f.risk2.id]);
      expect(await found('RiskAssessment?probability=ge0.52')).toEqual([f.risk1.id, f.risk2.id].sort());
      expect(await found('RiskAssessment?probability=lt0.53')).toEqual([f.risk1.id]);
      expect(await found('RiskAssessment?probability=ne0.52')).toEqual([f.risk2.id]);
      expect(await found('RiskAssessment?probability=ap0.5')).toEqual([f.risk1.id, f.risk2.id].sort());
      expect((await get('RiskAssessment?probability=abc')).status).toBe(400);
    });

    test('quantity: system|code units, code alone, UCUM canonical comparison', async () => {
      expect(await found(`Observation?value-quantity=5.4|${UCUM}|mmol/L`)).toEqual([f.glu1.id]);
      expect(await found('Observation?value-quantity=5.4||mmol/L')).toEqual([f.glu1.id]);
      expect(await found('Observation?value-quantity=5.4')).toEqual([f.glu1.id]);
      // 5400 µmol/L is 5.4 mmol/L; 110 mg/dL is not comparable with mmol/L
      expect(await found(`Observation?value-quantity=5400|${UCUM}|umol/L`)).toEqual([f.glu1.id]);
      expect(await found(`Observation?value-quantity=gt6000|${UCUM}|umol/L`)).toEqual([f.glu3.id]);
      expect(await found(`Observation?value-quantity=gt1|${UCUM}|g/L`)).toEqual([f.glu2.id]);
      expect(await found(`Observation?value-quantity=lt5|${UCUM}|mmol/L`)).toEqual([]);
      expect((await get(`Observation?value-quantity=5|${UCUM}|notaunit`)).status).toBe(400);
    });

    test('uri: exact, :below and :above', async () => {
      expect(await found('ValueSet?url=http://esante.example/fhir/ValueSet/glucose')).toEqual([f.vs1.id]);
      expect(await found('ValueSet?url:below=http://esante.example/fhir/ValueSet')).toEqual([f.vs1.id, f.vs2.id].sort());
      expect(await found('ValueSet?url:above=http://esante.example/fhir/ValueSet/glucose/fasting/v2')).toEqual([f.vs1.id, f.vs2.id].sort());
    });

    test('composite: code with value, and components told apart', async () => {
      expect(await found(`Observation?code-value-quantity=${LOINC}|2339-0$gt6|${UCUM}|mmol/L`)).toEqual([f.glu3.id]);
      expect(await found('Observation?code-value-quantity=2339-0$5.4')).toEqual([f.glu1.id]);
      // systolic 130, diastolic 80: a diastolic above 100 must not match the systolic value
      expect(await found(`Observation?component-code-value-quantity=${LOINC}|8480-6$gt125`)).toEqual([f.bp.id]);
      expect(await found(`Observation?component-code-value-quantity=${LOINC}|8462-4$gt100`)).toEqual([]);
      expect((await get('Observation?code-value-quantity=2339-0')).status).toBe(400);
    });

    test('token modifiers: :not, :text, :of-type; reference :identifier', async () => {
      const allGlucoseOrBp = await found('Observation?code:not=1558-6');
      expect(allGlucoseOrBp).toEqual([f.glu1.id, f.glu2.id, f.glu3.id, f.bp.id].sort());
      expect(await found('Observation?code:text=glycemie')).toEqual([f.text.id]);
      expect(await found('Observation?code:text=fasting')).toEqual([f.text.id]);
      expect(await found(`Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NH|${NIR1}`)).toEqual([f.p1.id]);
      expect(await found(`Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NH|${NIR2}`)).toEqual([]); // her NIR is typed INS-NIR
      expect(await found(`DocumentReference?author:identifier=${RPPS}|${RPPS1}`)).toEqual([f.doc.id]);
      expect((await get('Observation?code:above=1558-6')).status).toBe(400); // :above takes system|code
    });

    test('chains at any depth, with a type, and reverse chains (_has), nested', async () => {
      expect(await found(`DocumentReference?subject:Patient.identifier=${NSS}|${NIR1}`)).toEqual([f.doc.id]);
      expect(await found(`Observation?patient.general-practitioner.identifier=${RPPS}|${RPPS2}`)).toEqual([f.glu3.id, f.bp.id].sort());
      expect(await found(`Observation?subject:Patient.general-practitioner:Practitioner.name=medecin`)).toEqual([f.glu1.id, f.glu2.id].sort());
      expect(await found(`Patient?_has:Observation:patient:code=85354-9`)).toEqual([f.p2.id]);
      expect(await found(`Practitioner?_has:Patient:general-practitioner:_has:Observation:patient:code=85354-9`)).toEqual([f.gp2.id]);
      expect(await found(`Patient?_has:Observation:patient:code=nothing`)).toEqual([]);
      // a reference inside a contained resource is not the container's reference
      expect(await found(`DocumentReference?subject.general-practitioner=Practitioner/${f.gp2.id}`)).toEqual([]);
      expect((await get('Patient?_has:Observation:nosuch:code=x')).status).toBe(400);
      expect((await get('Patient?_has=Observation')).status).toBe(400);
    });

    test('_include, _revinclude, :iterate and wildcards, with search.mode include', async () => {
      const inc = await get(`Observation?_id=${f.glu1.id}&_include=Observation:subject&_include=Observation:performer:Practitioner`);
      const modes = inc.body.entry.map((e: { resource: { resourceType: string; id: string }; search: { mode: string } }) => `${e.search.mode}:${e.resource.resourceType}/${e.resource.id}`).sort();
      expect(modes).toEqual([`include:Patient/${f.p1.id}`, `include:Practitioner/${f.gp.id}`, `match:Observation/${f.glu1.id}`].sort());
      expect(inc.body.total).toBe(1);
      const rev = await get(`Patient?_id=${f.p2.id}&_revinclude=Observation:subject`);
      expect(ids(rev.body)).toEqual([f.p2.id]);
      const included = rev.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'include').map((e: { resource: { id: string } }) => e.resource.id).sort();
      expect(included).toEqual([f.glu3.id, f.bp.id].sort());
      // iterate: observations -> their patients -> those patients' practitioners
      const it = await get(`Observation?_id=${f.glu3.id}&_include=Observation:subject&_include:iterate=Patient:general-practitioner`);
      const itIds = it.body.entry.map((e: { resource: { id: string } }) => e.resource.id).sort();
      expect(itIds).toEqual([f.glu3.id, f.p2.id, f.gp2.id].sort());
      const star = await get(`Encounter?_id=${f.enc.id}&_include=*`);
      expect(star.body.entry.map((e: { resource: { id: string } }) => e.resource.id).sort()).toEqual([f.enc.id, f.p1.id, f.org.id].sort());
      const revStar = await get(`Organization?_id=${f.org.id}&_revinclude=*`);
      expect(revStar.body.entry.map((e: { resource: { id: string } }) => e.resource.id).sort()).toEqual([f.org.id, f.p1.id, f.enc.id].sort());
      expect((await get('Observation?_include=Patient:link')).status).toBe(400);
    });

    test('_sort on several parameters, descending, multi-valued fields; paging keeps the order', async () => {
      expect(await sorted(`Observation?code=2339-0&_sort=-date`)).toEqual([f.glu2.id, f.glu3.id, f.glu1.id]);
      expect(await sorted(`Observation?code=2339-0&_sort=date`)).toEqual([f.glu1.id, f.glu3.id, f.glu2.id]);
      expect(await sorted(`Observation?code=2339-0&_sort=-date&_count=1`)).toEqual([f.glu2.id]); // the latest glucose
      // given names: Zola has Émile and Adèle: ascending sorts by the smallest (adele), descending by the largest (emile)
      expect(await sorted(`Patient?_id=${f.p1.id},${f.p2.id},${f.p3.id}&_sort=given`)).toEqual([f.p1.id, f.p3.id, f.p2.id]);
      expect(await sorted(`Patient?_id=${f.p1.id},${f.p2.id},${f.p3.id}&_sort=-given`)).toEqual([f.p2.id, f.p1.id, f.p3.id]);
      // several keys: patient, then date descending
      expect(await sorted(`Observation?code=2339-0&_sort=subject,-date`)).toEqual(
        [f.p1.id, f.p2.id].sort()[0] === f.p1.id ? [f.glu2.id, f.glu1.id, f.glu3.id] : [f.glu3.id, f.glu2.id, f.glu1.id],
      );
      // following next links gives the same order as one page
      const all = await sorted(`Observation?_sort=-date&_count=100`);
      expect(all).toHaveLength(5); // three pages of two
      const paged: string[] = [];
      let res = await get(`Observation?_sort=-date&_count=2`);
      for (;;) {
        paged.push(...ids(res.body));
        const next = res.body.link.find((l: { relation: string }) => l.relation === 'next');
        if (!next) break;
        res = await request(h.app).get(`/fhir${next.url.slice(BASE.length)}`);
      }
      expect(paged).toEqual(all);
      expect((await get('Observation?_sort=nonsense')).status).toBe(400);
    });

    test('_summary, _elements, _total, _count=0', async () => {
      const summary = await get(`Patient?_id=${f.p1.id}&_summary=true`);
      const r = summary.body.entry[0].resource;
      expect(r.name).toEqual([{ family: 'Zola', given: ['Émile', 'Adèle'] }]);
      expect(r.generalPractitioner).toBeUndefined();
      expect(r.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));
      const count = await get('Patient?_summary=count');
      expect(count.body.total).toBe(3); // p1, p2, p3 (not the contained Patient)
      expect(count.body.entry).toBeUndefined(); // R4 JSON has no empty arrays
      const elements = await get(`Patient?_id=${f.p1.id}&_elements=birthDate`);
      const e = elements.body.entry[0].resource;
      expect(Object.keys(e).sort()).toEqual(['birthDate', 'id', 'meta', 'resourceType']);
      const none = await get('Patient?_total=none');
      expect(none.body.total).toBeUndefined();
      expect((await get('Patient?_summary=maybe')).status).toBe(400);
    });

    test('system-level search, compartment search and $everything', async () => {
      const sys = await get(`?_type=Patient,Practitioner&_id=${f.p1.id},${f.gp.id},${f.glu1.id}`);
      expect(sys.status).toBe(200);
      expect(ids(sys.body).sort()).toEqual([f.p1.id, f.gp.id].sort());
      expect((await get('?_type=Nope')).status).toBe(400);
      expect((await get('?_type=Patient,Observation&code=x')).status).toBe(400); // not a parameter of Patient

      const comp = await get(`Patient/${f.p1.id}/Observation?code=2339-0`);
      expect(ids(comp.body).sort()).toEqual([f.glu1.id, f.glu2.id].sort());
      const compDocs = await get(`Patient/${f.p1.id}/DocumentReference`);
      expect(ids(compDocs.body)).toEqual([f.doc.id]);
      expect((await get(`Patient/${f.p1.id}/ValueSet`)).status).toBe(400);

      const every = await get(`Patient/${f.p1.id}/$everything`);
      expect(every.status).toBe(200);
      const everyIds = ids(every.body).sort();
      expect(everyIds).toEqual([f.p1.id, f.glu1.id, f.glu2.id, f.risk1.id, f.doc.id, f.enc.id].sort());
      expect(everyIds).not.toContain(f.glu3.id);
      // and the resources they reference, outside the compartment: the general practitioner (also a performer), the organisation
      const referenced = every.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'include').map((e: { resource: { resourceType: string; id: string } }) => `${e.resource.resourceType}/${e.resource.id}`);
      expect(referenced.sort()).toEqual([`Organization/${f.org.id}`, `Practitioner/${f.gp.id}`].sort());
      const typed = await get(`Patient/${f.p1.id}/$everything?_type=Observation`);
      expect(ids(typed.body).sort()).toEqual([f.glu1.id, f.glu2.id].sort());
      const paged: string[] = [];
      let res = await get(`Patient/${f.p1.id}/$everything?_count=2`);
      for (;;) {
        paged.push(...ids(res.body));
        const next = res.body.link.find((l: { relation: string }) => l.relation === 'next');
        if (!next) break;
        res = await request(h.app).get(`/fhir${next.url.slice(BASE.length)}`);
      }
      expect(paged.sort()).toEqual(everyIds);
      const later = await get(`Patient/${f.p1.id}/$everything?_since=2100-01-01T00:00:00Z`);
      expect(ids(later.body)).toEqual([]);
      expect((await get('Patient/nobody/$everything')).status).toBe(404);
    });

    test('token :below and :above follow the code system hierarchy', async () => {
      const VS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
      const cond = (code: string) => h.create({ resourceType: 'Condition', subject: { reference: `Patient/${f.p3.id}` }, code: { text: 'test' }, verificationStatus: { coding: [{ system: VS, code }] } });
      const provisional = await cond('provisional');
      const unconfirmed = await cond('unconfirmed');
      const confirmed = await cond('confirmed');
      expect(await found(`Condition?verification-status:below=${VS}|unconfirmed`)).toEqual([provisional.id, unconfirmed.id].sort());
      expect(await found(`Condition?verification-status:above=${VS}|provisional`)).toEqual([provisional.id, unconfirmed.id].sort());
      expect(await found(`Condition?verification-status:below=${VS}|confirmed`)).toEqual([confirmed.id]);
      // no hierarchy to follow for LOINC here: refused, not guessed
      expect((await get(`Observation?code:below=${LOINC}|2339-0`)).status).toBe(400);
      expect((await get(`Condition?verification-status:below=${VS}|nonsense`)).status).toBe(400);
    });

    test('_contained: contained resources searched as resources of their own, or their containers', async () => {
      const q = `Patient?general-practitioner=Practitioner/${f.gp2.id}`;
      expect(await found(q)).toEqual([f.p2.id]);
      const contained = await get(`${q}&_contained=true`);
      expect(contained.body.total).toBe(1);
      expect(contained.body.entry[0].fullUrl).toBe(`${BASE}/DocumentReference/${f.doc.id}#inner`);
      expect(contained.body.entry[0].resource).toMatchObject({ resourceType: 'Patient', id: 'inner' });
      expect(await found(`${q}&_contained=both`)).toEqual([f.p2.id, 'inner'].sort());
      const containers = await get(`${q}&_contained=true&_containedType=container`);
      expect(ids(containers.body)).toEqual([f.doc.id]);
      expect(containers.body.entry[0].resource.resourceType).toBe('DocumentReference');
      // a new version without the contained resource takes it out of the index
      const current = (await get(`DocumentReference/${f.doc.id}`)).body;
      const { contained: _c, context: _x, ...rest } = current;
      const changed = await request(h.app).put(`/fhir/DocumentReference/${f.doc.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(rest));
      expect(changed.status).toBe(200);
      expect((await get(`${q}&_contained=true`)).body.total).toBe(0);
      await request(h.app).put(`/fhir/DocumentReference/${f.doc.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(current)).expect(200);
      expect((await get(`${q}&_contained=true`)).body.total).toBe(1);
      expect((await get('Patient?_contained=maybe')).status).toBe(400);
    });

    test('special: Location near latitude|longitude|distance|units', async () => {
      const toulouse = await h.create({ resourceType: 'Location', name: 'Toulouse', position: { latitude: 43.6047, longitude: 1.4442 } });
      const blagnac = await h.create({ resourceType: 'Location', name: 'Blagnac', position: { latitude: 43.6356, longitude: 1.3906 } });
      await h.create({ resourceType: 'Location', name: 'Paris', position: { latitude: 48.8566, longitude: 2.3522 } });
      expect(await found('Location?near=43.6047|1.4442|2|km')).toEqual([toulouse.id]);
      expect(await found('Location?near=43.6047|1.4442|10|km')).toEqual([toulouse.id, blagnac.id].sort());
      expect(await found('Location?near=43.6047|1.4442|7000|m')).toEqual([toulouse.id, blagnac.id].sort());
      expect((await get('Location?near=91|1|1|km')).status).toBe(400);
      expect((await get('Location?near=43|1|1|parsecs')).status).toBe(400);
    });

    test('the include cap is reported, never a silent truncation', async () => {
      const p = await h.create({ resourceType: 'Patient', name: [{ family: 'Capped' }] });
      for (let i = 0; i < 4; i++) await h.create(obs('2339-0', { subject: { reference: `Patient/${p.id}` } }));
      const res = await get(`Patient?_id=${p.id}&_revinclude=Observation:subject`);
      const included = res.body.entry.filter((e: { search: { mode: string } }) => e.search.mode === 'include');
      expect(included).toHaveLength(3);
      const outcome = res.body.entry.find((e: { search: { mode: string } }) => e.search.mode === 'outcome');
      expect(outcome.resource.issue[0].diagnostics).toMatch(/more than 3/);
    });

    test('POST _search at system and type level', async () => {
      const res = await request(h.app).post('/fhir/Observation/_search').set('Content-Type', 'application/x-www-form-urlencoded').send(`code=2339-0&_sort=-date&_count=1`);
      expect(ids(res.body)).toEqual([f.glu2.id]);
      const sys = await request(h.app).post('/fhir/_search').set('Content-Type', 'application/x-www-form-urlencoded').send(`_type=Patient&_id=${f.p2.id}`);
      expect(ids(sys.body)).toEqual([f.p2.id]);
      expect((await request(h.app).post('/fhir/_search').set('Content-Type', FHIR_JSON).send('{}')).status).toBe(415);
    });
  },
  { maxIncludes: 3 },
);
