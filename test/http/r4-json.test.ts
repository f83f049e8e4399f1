import { eachEngine, FHIR_JSON, patient, request } from '../helpers/http';
import { withTransactions } from '../helpers/engines';

/** R4 JSON has no empty arrays, no empty objects, no empty strings and no null values: the server never sends them. */
function forbiddenJson(value: unknown, path = '$'): string[] {
  if (value === null) return [`${path}: null`];
  if (value === '') return [`${path}: empty string`];
  if (Array.isArray(value)) return value.length === 0 ? [`${path}: empty array`] : value.flatMap((v, i) => forbiddenJson(v, `${path}[${i}]`));
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return entries.length === 0 ? [`${path}: empty object`] : entries.flatMap(([k, v]) => forbiddenJson(v, `${path}.${k}`));
  }
  return [];
}

eachEngine('the JSON the server sends', (h) => {
  test('searches and histories with nothing in them, empty Bundles, the CapabilityStatement, errors: no empty array, object or string, no null', async () => {
    const p = await h.create(patient('Vide'));
    const answers = [
      await request(h.app).get('/fhir/Patient?name=personne'),
      await request(h.app).get('/fhir/Observation?_count=0&_total=accurate'),
      await request(h.app).get('/fhir/Basic/_history'),
      await request(h.app).get(`/fhir/Patient/${p.id}/Observation`),
      await request(h.app).get(`/fhir/Patient/${p.id}/$everything?_type=Observation`),
      await request(h.app).get('/fhir?_type=Basic'),
      await request(h.app).post('/fhir').set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type: 'batch' })),
      await request(h.app).get('/fhir/metadata'),
      await request(h.app).get('/fhir/Patient/inconnu'),
      await request(h.app).get(`/fhir/Patient/${p.id}`),
    ];
    for (const res of answers) {
      expect(res.status).toBeLessThan(500);
      expect(forbiddenJson(res.body)).toEqual([]);
    }
    expect(answers[0].body.entry).toBeUndefined();
    expect(answers[6].body).toMatchObject({ resourceType: 'Bundle', type: 'batch-response' });
  });

  withTransactions(h.engine)('an empty transaction answers a transaction-response without entries', async () => {
    const res = await request(h.app).post('/fhir').set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction' }));
    expect(res.status).toBe(200);
    expect(forbiddenJson(res.body)).toEqual([]);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'transaction-response' });
  });
});
