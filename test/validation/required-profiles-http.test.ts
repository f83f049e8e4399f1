import { packageExamples } from '../../src/validation/packages';
import { eachEngine, FHIR_JSON, request } from '../helpers/http';

/** Which profile a write must meet (REQUIRED_PROFILES=fr), shown with the packages' own examples stored as they are. */
type R = Record<string, any>;
const examples = new Map(packageExamples().map((e) => [e.file, e.resource as R]));
const example = (file: string): R => structuredClone(examples.get(file)!);
/** PDSm's simplified-publish example with the size and SHA-1 of its data (the package's are wrong: profiles/README.md) */
const simplifiedDocument = (): R => {
  const r = example('DocumentReference-PDSmSimplifiedExample.json');
  r.content[0].attachment.size = 11;
  r.content[0].attachment.hash = 'Ck1VqNd45QIvq3AZd8XYQLvEhtA=';
  return r;
};
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

    it('a required binding to a value set held only as an older build: a code it does not list is a warning (could not check), and the resource is stored', async () => {
      // FR Core's blood pressure example, required to meet Mesures BP: its SNOMED CT body site is not in
      // the local 1.1.0 copy of JDV-J149 (the current one lists FMA codes)
      const bp = example('Observation-FRCoreObservationBPExample.json');
      const res = await post(bp).set('Prefer', 'return=OperationOutcome');
      expect(res.status).toBe(201);
      const bodySite = res.body.issue.filter((i: R) => i.expression?.[0] === 'Observation.bodySite');
      expect(bodySite).toEqual([expect.objectContaining({ severity: 'warning', diagnostics: expect.stringContaining('could not check') })]);
    });

    it('a code absent from a code system the server holds in full is an error, even under an extensible binding', async () => {
      const p = example('Patient-FRCorePatientExample.json');
      p.extension[1].extension[0].valueCoding.code = 'NOPE';
      const res = await post(p);
      expect(res.status).toBe(422);
      const errors = res.body.issue.filter((i: R) => i.severity === 'error');
      expect(errors).toEqual([expect.objectContaining({ code: 'code-invalid', expression: ['Patient.extension[1].extension[0].value.ofType(Coding)'] })]);
      expect(errors[0].diagnostics).toContain('https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445');
    });

    it('a DocumentReference declaring the PDSm simplified-publish profile is checked against it, not against the comprehensive one', async () => {
      const simplified = simplifiedDocument();
      expect(simplified.meta.profile).toEqual(['https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-simplified-publish']);
      expect((await post(simplified)).status).toBe(201);
      // the simplified profile's own rules still hold
      const broken = simplifiedDocument();
      delete broken.subject;
      const res = await post(broken);
      expect(res.status).toBe(422);
      expect(res.body.issue.filter((i: R) => i.severity === 'error').flatMap((i: R) => i.expression)).toEqual(['DocumentReference.subject']);
      // declaring no PDSm profile: the comprehensive one is required
      const undeclared = simplifiedDocument();
      delete undeclared.meta;
      const refused = await post(undeclared);
      expect(refused.status).toBe(422);
      expect(refused.body.issue.filter((i: R) => i.severity === 'error').map((i: R) => i.diagnostics)).toContainEqual(expect.stringContaining('pdsm-comprehensive-document-reference'));
    });

    it('the CapabilityStatement lists, per type, the profiles a write must meet, and the packages loaded', async () => {
      const cs = (await request(h.app).get('/fhir/metadata')).body;
      const of = (type: string) => cs.rest[0].resource.find((r: R) => r.type === type);
      const required = h.services.validator!.required.describe();
      for (const [type, profiles] of Object.entries(required)) expect([type, of(type).supportedProfile]).toEqual([type, profiles]);
      expect(of('DocumentReference').supportedProfile).toEqual(['https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-comprehensive-document-reference', 'https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-simplified-publish']);
      expect(of('Observation').supportedProfile).toEqual(expect.arrayContaining(mesuresObservations.map((e) => (e.resource as R).meta.profile[0])));
      expect(of('Binary').supportedProfile).toBeUndefined();
      expect(cs.implementationGuide).toEqual(
        expect.arrayContaining([
          'https://hl7.fr/ig/fhir/core/ImplementationGuide/hl7.fhir.fr.core|2.2.0',
          'https://interop.esante.gouv.fr/ig/fhir/pdsm/ImplementationGuide/ans.fhir.fr.pdsm|3.1.1',
          'https://interop.esante.gouv.fr/ig/fhir/mesures/ImplementationGuide/ans.fhir.fr.mesures|3.1.0',
          'https://espace-sante.example/fhir/ImplementationGuide/espace-sante|0.1.0',
        ]),
      );
      expect(cs.implementationGuide).toHaveLength(10);
    });
  },
  { requiredProfiles: 'fr' },
);
