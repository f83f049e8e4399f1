import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../src/validation/packages';
import { eachEngine, FHIR_JSON, request } from '../helpers/http';
import { INVALID } from './ig-invalid';

/** Our own profiles enforced on writes (REQUIRED_PROFILES=fr): the valid examples are stored, the invalid ones answer 422. */
type R = Record<string, any>;
const dir = path.join(repoRoot(), 'profiles', 'espace-sante', 'examples');
const invalidDir = path.join(repoRoot(), 'ig', 'invalid');
const read = (file: string): R => JSON.parse(fs.readFileSync(file, 'utf8'));
/** without id nor meta: the profile applies because the server requires it for the type */
const bare = (r: R): R => {
  const c = structuredClone(r);
  delete c.id;
  delete c.meta;
  return c;
};

eachEngine(
  'our own profiles on writes',
  (h) => {
    const post = (body: R) => request(h.app).post(`/fhir/${body.resourceType}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

    it.each(fs.readdirSync(dir).sort())('valid example %s: 201', async (file) => {
      const res = await post(bare(read(path.join(dir, file))));
      expect(res.status).toBe(201);
      expect(res.body.id).toBeTruthy();
    });

    it.each(Object.entries(INVALID))('invalid example ig/invalid/%s: 422 with the expression of the fault', async (file, { expression }) => {
      const res = await post(bare(read(path.join(invalidDir, file))));
      expect(res.status).toBe(422);
      expect(res.body.resourceType).toBe('OperationOutcome');
      const errors = res.body.issue.filter((i: R) => i.severity === 'error');
      expect(errors.flatMap((i: R) => i.expression)).toEqual([expression]);
      expect(errors[0].diagnostics).toBeTruthy();
    });

    it('$validate names our profile for an invalid Consent and stores nothing', async () => {
      const consents = async () => (await request(h.app).get('/fhir/Consent?_summary=count')).body.total as number;
      const stored = await consents();
      const res = await request(h.app).post('/fhir/Consent/$validate').set('Content-Type', FHIR_JSON).send(JSON.stringify(bare(read(path.join(invalidDir, 'Consent-no-patient.json')))));
      expect(res.status).toBe(200);
      const error = res.body.issue.find((i: R) => i.severity === 'error');
      expect(error.expression).toEqual(['Consent.patient']);
      expect(error.diagnostics).toContain('https://espace-sante.example/fhir/StructureDefinition/espace-sante-consent');
      expect(await consents()).toBe(stored);
    });
  },
  { requiredProfiles: 'fr' },
);
