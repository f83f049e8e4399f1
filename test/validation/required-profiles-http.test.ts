import { packageExamples } from '../../src/validation/packages';
import { eachEngine, FHIR_JSON, request } from '../helpers/http';

/** Which profile a write must meet (REQUIRED_PROFILES=fr), shown with the packages' own examples stored as they are. */
type R = Record<string, any>;
const mesuresObservations = packageExamples().filter((e) => e.package.startsWith('ans.fhir.fr.mesures#') && e.resource.resourceType === 'Observation');

eachEngine(
  'required profiles on writes',
  (h) => {
    const post = (body: R) => request(h.app).post(`/fhir/${body.resourceType}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

    it('the Mesures de santé package has its 13 example Observations', () => {
      expect(mesuresObservations).toHaveLength(13);
    });

    it.each(mesuresObservations.map((e) => [e.file, e.resource] as const))('Mesures de santé example %s is stored as it is (201)', async (_file, resource) => {
      // the profile required for its code is the one it declares (chosen by the code the profile fixes)
      expect(h.services.validator!.required.for(resource)).toEqual((resource as R).meta.profile);
      const res = await post(resource as R);
      expect(res.body.issue?.filter((i: R) => i.severity === 'error') ?? []).toEqual([]);
      expect(res.status).toBe(201);
    });
  },
  { requiredProfiles: 'fr' },
);
