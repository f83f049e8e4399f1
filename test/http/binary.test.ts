import { eachEngine, request } from '../helpers/http';

/** FHIR Binary in its native form (http.html#binary): raw bytes in, raw bytes out, the resource when a FHIR format is asked for. */
eachEngine('Binary', (h) => {
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.from([0, 1, 2, 250, 251, 252, 255]), Buffer.from('\n%%EOF\n')]);

  test('a raw body is stored as a Binary with its content type; a read with a native Accept gets the bytes back, a FHIR Accept the resource', async () => {
    const created = await request(h.app).post('/fhir/Binary').set('Content-Type', 'application/pdf').set('X-Security-Context', 'Patient/123').send(pdf);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.headers.location).toMatch(new RegExp(`/Binary/${id}/_history/1$`));
    expect(created.body).toMatchObject({ resourceType: 'Binary', contentType: 'application/pdf', securityContext: { reference: 'Patient/123' }, data: pdf.toString('base64') });

    for (const accept of ['application/pdf', '*/*']) {
      const raw = await request(h.app).get(`/fhir/Binary/${id}`).set('Accept', accept).buffer(true).parse((res, cb) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      });
      expect(raw.status).toBe(200);
      expect(raw.headers['content-type']).toBe('application/pdf');
      expect(raw.headers['x-security-context']).toBe('Patient/123');
      expect(raw.headers.etag).toBe('W/"1"');
      expect(Buffer.compare(raw.body as Buffer, pdf)).toBe(0);
    }
    const asFhir = await request(h.app).get(`/fhir/Binary/${id}`).set('Accept', 'application/fhir+json');
    expect(asFhir.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(asFhir.body).toMatchObject({ resourceType: 'Binary', id, contentType: 'application/pdf', data: pdf.toString('base64') });
    expect((await request(h.app).get(`/fhir/Binary/${id}?_format=json`).set('Accept', 'application/pdf')).body.resourceType).toBe('Binary');
    expect((await request(h.app).get(`/fhir/Binary/${id}`)).body.resourceType).toBe('Binary'); // no Accept: FHIR JSON
  });

  test('a raw PUT makes a new version; vread gives each version’s bytes; an unknown Binary is a 404 OperationOutcome', async () => {
    const first = await request(h.app).post('/fhir/Binary').set('Content-Type', 'text/xml').send('<ClinicalDocument xmlns="urn:hl7-org:v3"/>');
    const id = first.body.id as string;
    const second = await request(h.app).put(`/fhir/Binary/${id}`).set('Content-Type', 'text/xml').send('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>v2</title></ClinicalDocument>');
    expect(second.status).toBe(200);
    const v1 = await request(h.app).get(`/fhir/Binary/${id}/_history/1`).set('Accept', 'text/xml');
    expect(v1.headers['content-type']).toMatch(/^text\/xml/);
    expect(v1.text).toBe('<ClinicalDocument xmlns="urn:hl7-org:v3"/>');
    expect((await request(h.app).get(`/fhir/Binary/${id}`).set('Accept', 'text/xml')).text).toContain('<title>v2</title>');
    const missing = await request(h.app).get('/fhir/Binary/inconnu').set('Accept', 'application/pdf');
    expect(missing.status).toBe(404);
    expect(missing.body.resourceType).toBe('OperationOutcome');
  });
});
