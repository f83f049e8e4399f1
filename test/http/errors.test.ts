import { eachEngine, FHIR_JSON, patient, request } from '../helpers/http';

eachEngine(
  'errors and content negotiation',
  (h) => {
    const expectOutcome = (res: request.Response, status: number, diagnostics?: RegExp) => {
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].severity).toMatch(/error|fatal/);
      if (diagnostics) expect(res.body.issue[0].diagnostics).toMatch(diagnostics);
      expect(res.text).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack trace
    };

    test('malformed JSON, a body that is not a resource, a wrong resourceType', async () => {
      expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send('{"resourceType": "Patient",'), 400, /not valid JSON/);
      expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send('[1,2]'), 400, /not a FHIR resource/);
      expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send('{"name":"x"}'), 400, /resourceType/);
      const wrong = await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Observation', status: 'final' }));
      expectOutcome(wrong, 400, /does not match/);
      expect(wrong.body.issue[0].expression).toEqual(['Observation.resourceType']);
      expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Nonsense' })), 400, /Unknown resourceType/);
      expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(''), 400);
    });

    test('content types: JSON in, other types 415, XML 415 with a clear message', async () => {
      const asJson = await request(h.app).post('/fhir/Patient').set('Content-Type', 'application/json').send(JSON.stringify(patient('Json')));
      expect(asJson.status).toBe(201);
      expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', 'text/plain').send('hello'), 415);
      expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', 'application/fhir+xml').send('<Patient/>'), 415, /XML is not supported/);
      expectOutcome(await request(h.app).get('/fhir/metadata?_format=xml'), 415, /XML/);
      expectOutcome(await request(h.app).get('/fhir/metadata').set('Accept', 'application/fhir+xml'), 415, /XML/);
      expect((await request(h.app).get('/fhir/metadata?_format=json')).status).toBe(200);
      const plain = await request(h.app).get('/fhir/metadata').set('Accept', 'application/json');
      expect(plain.headers['content-type']).toMatch(/^application\/json/);
      const pretty = await request(h.app).get(`/fhir/Patient/${asJson.body.id}?_pretty=true`);
      expect(pretty.text).toContain('\n  "resourceType": "Patient"');
      expect(JSON.parse(pretty.text)).toEqual(asJson.body);
    });

    test('unsupported methods answer 405 with Allow; unknown operations 501; unknown paths 404', async () => {
      const p = await h.create(patient('Method'));
      const post = await request(h.app).post(`/fhir/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(p));
      expectOutcome(post, 405);
      expect(post.headers.allow).toContain('PUT');
      expectOutcome(await request(h.app).delete('/fhir/metadata'), 405);
      expectOutcome(await request(h.app).options('/fhir/Patient'), 405);
      expectOutcome(await request(h.app).get(`/fhir/Patient/${p.id}/$lastn`), 501, /\$lastn/);
      expectOutcome(await request(h.app).get(`/fhir/Patient/${p.id}/foo/bar`), 404);
      expectOutcome(await request(h.app).get('/elsewhere'), 404);
    });

    test('a URL whose path does not percent-decode answers 400, in a request or a Bundle entry', async () => {
      expectOutcome(await request(h.app).get('/fhir/Patient/%ZZ'), 400, /not correctly percent-encoded/);
      const res = await request(h.app)
        .post('/fhir')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient/%E0%A4%A' } }] }));
      expectOutcome(res, 400, /not correctly percent-encoded/);
      expect(res.body.issue[0].expression).toEqual(['Bundle.entry[0].request.url']);
    });

    test('JSON nested deeper than 100 levels is refused with 400, in a body or a Bundle entry, and nothing is stored', async () => {
      const nested = (depth: number, open: string, inner: string, close: string) => open.repeat(depth) + inner + close.repeat(depth);
      // (the suite's body limit is 4 KB: deep but short)
      const deepArrays = `{"resourceType":"Patient","extension":${nested(150, '[', '', ']')}}`;
      const deepObjects = `{"resourceType":"Patient","text":${nested(150, '{"a":', '1', '}')}}`;
      const deepBundle = `{"resourceType":"Bundle","type":"collection","entry":${nested(150, '[', '', ']')}}`;
      const before = (await request(h.app).get('/fhir/Patient?_summary=count')).body.total;
      for (const [path, body] of [['/fhir/Patient', deepArrays], ['/fhir/Patient', deepObjects], ['/fhir/Bundle', deepBundle], ['/fhir/Patient/$validate', deepObjects]]) {
        expectOutcome(await request(h.app).post(path).set('Content-Type', FHIR_JSON).send(body), 400, /nests JSON more than 100 levels deep/);
      }
      const inBatch = await request(h.app)
        .post('/fhir')
        .set('Content-Type', FHIR_JSON)
        .send(`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"POST","url":"Patient"},"resource":${deepObjects}}]}`);
      expectOutcome(inBatch, 400, /nests JSON more than 100 levels deep/);
      expect((await request(h.app).get('/fhir/Patient?_summary=count')).body.total).toBe(before);
      // a resource nested deep but within the limit (extensions in extensions, 40 levels of JSON) is stored
      const within = await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(`{"resourceType":"Patient","extension":[${nested(19, '{"url":"http://example.org/e","extension":[', '{"url":"http://example.org/e","valueString":"a"}', ']}')}]}`);
      expect(within.status).toBe(201);
    });

    test('two entries of a Bundle with the same fullUrl are refused (bdl-7), and nothing is stored', async () => {
      const before = (await request(h.app).get('/fhir/Patient?_summary=count')).body.total;
      for (const type of ['batch', 'transaction']) {
        const entry = { fullUrl: 'urn:uuid:5f0c2a4e-0000-4000-8000-000000000001', request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient' } };
        const res = await request(h.app).post('/fhir').set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type, entry: [entry, entry] }));
        expectOutcome(res, 400, /already the fullUrl of Bundle.entry\[0\]/);
        expect(res.body.issue[0].expression).toEqual(['Bundle.entry[1].fullUrl']);
      }
      expect((await request(h.app).get('/fhir/Patient?_summary=count')).body.total).toBe(before);
    });

    test('metadata?mode=terminology is not built: 501, not a CapabilityStatement in its place', async () => {
      expectOutcome(await request(h.app).get('/fhir/metadata?mode=terminology'), 501, /TerminologyCapabilities/);
      expectOutcome(await request(h.app).get('/fhir/metadata?mode=other'), 400, /mode is full, normative or terminology/);
      expect((await request(h.app).get('/fhir/metadata?mode=full')).body.resourceType).toBe('CapabilityStatement');
    });

    test('the server keeps serving after bad requests', async () => {
      for (let i = 0; i < 5; i++) expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send('{oops'), 400, /not valid JSON/);
      expect((await request(h.app).get('/fhir/metadata')).status).toBe(200);
    });

    test('a body over the size limit answers 413', async () => {
      const big = patient('Big', { text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(5000)}</div>` } });
      expectOutcome(await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(big)), 413, /limit/);
      expect((await request(h.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(patient('Small')))).status).toBe(201);
    });

    test('the CapabilityStatement lists what works', async () => {
      const res = await request(h.app).get('/fhir/metadata');
      expect(res.status).toBe(200);
      const cs = res.body;
      expect(cs.resourceType).toBe('CapabilityStatement');
      expect(cs.fhirVersion).toBe('4.0.1');
      expect(cs.format).toEqual(['json']);
      expect(cs.rest[0].resource).toHaveLength(h.services.resourceTypes.size);
      const pat = cs.rest[0].resource.find((r: { type: string }) => r.type === 'Patient');
      expect(pat.interaction.map((i: { code: string }) => i.code).sort()).toEqual(['create', 'delete', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread']);
      const params = pat.searchParam.map((p: { name: string }) => p.name);
      for (const p of ['_id', '_lastUpdated', 'identifier', 'name', 'family', 'birthdate', 'gender', 'general-practitioner']) expect(params).toContain(p);
      const types = new Set(cs.rest.flatMap((r: { resource: { searchParam: { type: string }[] }[] }) => r.resource.flatMap((x) => x.searchParam.map((s) => s.type))));
      expect([...types].sort()).toEqual(['composite', 'date', 'number', 'quantity', 'reference', 'special', 'string', 'token', 'uri']);
      expect(cs.rest[0].interaction.map((i: { code: string }) => i.code)).toEqual([...(h.engine.transactions ? ['transaction'] : []), 'batch', 'search-system', 'history-system']);
      expect(pat.operation).toContainEqual({ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' });
      expect(pat.searchInclude).toEqual(expect.arrayContaining(['*', 'Patient:general-practitioner', 'Patient:organization']));
      expect(pat.searchRevInclude).toEqual(expect.arrayContaining(['*', 'Observation:subject', 'DocumentReference:subject']));
      expect(cs.rest[0].operation.map((o: { name: string }) => o.name)).toContain('reindex');
      expect(cs.rest[0].compartment).toEqual(['http://hl7.org/fhir/CompartmentDefinition/patient']);
      for (const inc of pat.searchInclude as string[]) expect([inc, (await request(h.app).get('/fhir/Patient').query({ _include: inc })).status]).toEqual([inc, 200]);
      for (const rev of (pat.searchRevInclude as string[]).slice(0, 40)) expect([rev, (await request(h.app).get('/fhir/Patient').query({ _revinclude: rev })).status]).toEqual([rev, 200]);
      // every listed search parameter of a type answers a search without error
      for (const p of pat.searchParam as { name: string; type: string }[]) {
        const value = { token: 'x', string: 'x', reference: 'Patient/x', date: '2020', number: '1', quantity: '1', uri: 'http://x', composite: 'x$x', special: '43.6|1.44|10|km' }[p.type];
        const r = await request(h.app).get(`/fhir/Patient`).query({ [p.name]: value }).set('Prefer', 'handling=strict');
        expect([p.name, r.status]).toEqual([p.name, 200]);
      }
    });
  },
  { bodyLimit: 4096 },
);
