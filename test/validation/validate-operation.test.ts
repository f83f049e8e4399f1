import { eachEngine, FHIR_JSON, request } from '../helpers/http';

/** $validate runs the checks of the write it simulates, at system, type and instance level. */
type R = Record<string, any>;
const errorsOf = (outcome: R) => (outcome.issue ?? []).filter((i: R) => i.severity === 'error' || i.severity === 'fatal');
const parameters = (resource: R, mode?: string) => ({ resourceType: 'Parameters', parameter: [{ name: 'resource', resource }, ...(mode ? [{ name: 'mode', valueCode: mode }] : [])] });

eachEngine('$validate and writes agree', (h) => {
  const send = (method: 'post' | 'put', path: string, body: unknown) => request(h.app)[method](path).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

  /** Resources some of which a write refuses: $validate must say the same of each, at each level. */
  const cases: [string, R][] = [
    ['a Patient with nothing but its id', { resourceType: 'Patient', id: 'only-id' }],
    ['a Patient with nothing at all', { resourceType: 'Patient' }],
    ['a Patient with a gender outside its value set', { resourceType: 'Patient', id: 'bad-gender', gender: 'homme' }],
    ['a Patient with an unknown element', { resourceType: 'Patient', id: 'unknown-element', nickname: 'Pierrot' }],
    ['an Observation without status', { resourceType: 'Observation', id: 'no-status', code: { text: 'poids' } }],
  ];

  it.each(cases)('%s: create, update and $validate at every level give the same errors', async (_name, resource) => {
    const created = await send('post', `/fhir/${resource.resourceType}`, resource);
    const createErrors = created.status === 201 ? [] : errorsOf(created.body).map((i: R) => i.expression);
    expect([201, 422]).toContain(created.status);
    const typeLevel = await send('post', `/fhir/${resource.resourceType}/$validate`, parameters(resource, 'create'));
    const systemLevel = await send('post', '/fhir/$validate', parameters(resource, 'create'));
    const systemBare = await send('post', '/fhir/$validate', resource);
    for (const res of [typeLevel, systemLevel, systemBare]) {
      expect(res.status).toBe(200);
      expect(errorsOf(res.body).map((i: R) => i.expression)).toEqual(createErrors);
    }
    const id = resource.id ?? 'no-id-given';
    const withId = { ...resource, id };
    const updated = await send('put', `/fhir/${resource.resourceType}/${id}`, withId);
    const updateErrors = updated.status < 300 ? [] : errorsOf(updated.body).map((i: R) => i.expression);
    expect(updateErrors).toEqual(createErrors);
    const instance = await send('post', `/fhir/${resource.resourceType}/${id}/$validate`, parameters(withId, 'update'));
    expect(instance.status).toBe(200);
    expect(errorsOf(instance.body).map((i: R) => i.expression)).toEqual(updateErrors);
  });

  it('{resourceType, id} is valid for $validate as it is for an update', async () => {
    const only = { resourceType: 'Patient', id: 'x' };
    const res = await send('post', '/fhir/Patient/$validate', only);
    expect(res.status).toBe(200);
    expect(res.body.issue).toEqual([expect.objectContaining({ severity: 'information' })]);
    expect((await send('put', '/fhir/Patient/x', only)).status).toBe(201);
  });

  it('system-level $validate takes the resource in a Parameters resource parameter or as the body, and names its errors', async () => {
    const bad = { resourceType: 'Patient', gender: 'homme' };
    for (const body of [bad, parameters(bad)]) {
      const res = await send('post', '/fhir/$validate', body);
      expect(res.status).toBe(200);
      expect(errorsOf(res.body).map((i: R) => i.expression)).toEqual([['Patient.gender']]);
    }
    const unknownType = await send('post', '/fhir/$validate', { resourceType: 'Nothing' });
    expect(unknownType.status).toBe(400);
    const updateAtSystemLevel = await send('post', '/fhir/$validate', parameters(bad, 'update'));
    expect(updateAtSystemLevel.status).toBe(400);
    const cs = (await request(h.app).get('/fhir/metadata')).body;
    expect(cs.rest[0].operation.map((o: R) => o.name)).toContain('validate');
  });

  it('update mode refuses a resource whose id is not the one of the URL, as the update does', async () => {
    const put = await send('put', '/fhir/Patient/one', { resourceType: 'Patient', id: 'two' });
    expect(put.status).toBe(400);
    const res = await send('post', '/fhir/Patient/one/$validate', parameters({ resourceType: 'Patient', id: 'two' }, 'update'));
    expect(res.status).toBe(200);
    expect(errorsOf(res.body)).toEqual(errorsOf(put.body));
  });

  /** JSON R4 forbids, each with where it is refused */
  const forbidden: [string, R, string[]][] = [
    ['a null name', { name: [null] }, ['Patient.name[0]']],
    ['an empty name array', { name: [] }, ['Patient.name']],
    ['an empty extension array', { name: [{ family: 'Durand' }], extension: [] }, ['Patient.extension']],
    ['a null given name', { name: [{ family: 'Durand', given: [null] }] }, ['Patient.name[0].given[0]']],
    ['a null given name whose _given is null too', { name: [{ family: 'Durand', given: ['Anne', null], _given: [null, null] }] }, ['Patient.name[0].given[1]']],
    ['given and _given of different lengths', { name: [{ family: 'Durand', given: ['Anne', 'Marie'], _given: [null] }] }, ['Patient.name[0].given']],
    ['an empty object', { name: [{}] }, ['Patient.name[0]']],
    ['a null value', { name: [{ family: null, given: ['Anne'] }] }, ['Patient.name[0].family']],
    ['an empty string', { name: [{ family: '' }] }, ['Patient.name[0].family']],
    ['an empty array in a contained resource', { name: [{ family: 'Durand' }], contained: [{ resourceType: 'Organization', id: 'o', name: 'Clinique', alias: [] }], managingOrganization: { reference: '#o' } }, ['Patient.contained[0].alias']],
  ];

  it.each(forbidden)('%s is refused on write (422) and by $validate, at its element', async (_name, content, expressions) => {
    const resource = { resourceType: 'Patient', ...content };
    const created = await send('post', '/fhir/Patient', resource);
    expect(created.status).toBe(422);
    expect(errorsOf(created.body).map((i: R) => i.expression[0])).toEqual(expressions);
    const validated = await send('post', '/fhir/Patient/$validate', resource);
    expect(validated.status).toBe(200);
    expect(errorsOf(validated.body).map((i: R) => i.expression[0])).toEqual(expressions);
  });

  it('a null in a primitive array stands for a value that has only extensions, when _given holds them', async () => {
    const qualifier = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier', valueCode: 'BR' }] };
    const res = await send('post', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Durand', given: ['Anne', null], _given: [null, qualifier] }] });
    expect(res.body.issue ?? []).toEqual([]);
    expect(res.status).toBe(201);
    expect(res.body.name[0]._given).toEqual([null, qualifier]);
  });
});
