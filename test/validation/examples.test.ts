import { loadValidator } from '../../src/validation';
import { packageExamples } from '../../src/validation/packages';
import { testConfig } from '../helpers/engines';

const validator = loadValidator({ cacheDir: testConfig().validationCacheDir });
const examples = packageExamples();

/**
 * Examples shipped in the French packages that are wrong in the package itself (or need a package
 * that is not available here), with the error that proves it. See profiles/README.md.
 */
const KNOWN_BAD: Record<string, { expression: string; because: string }> = {
  'Organization-158480.json': { expression: 'Organization.address[0].extension[0].value.ofType(Coding)', because: 'TRE_R13-Commune code; FR Core 2.2.0 binds (required) to TRE_R13-CommuneOM' },
  'Organization-158480DP.json': { expression: 'Organization.address[0].extension[0].value.ofType(Coding)', because: 'same' },
  'Organization-example-organization-fictive.json': { expression: 'Organization.address[0].extension[0].value.ofType(Coding)', because: 'same' },
  'Organization-example-organization-nancy.json': { expression: 'Organization.address[0].extension[0].value.ofType(Coding)', because: 'same' },
  'Person-pp16dr-person.json': { expression: 'Person.extension[0].value.ofType(Address).extension[0].value.ofType(Coding)', because: 'same' },
  'Person-pp19dr-person.json': { expression: 'Person.extension[0].value.ofType(Address).extension[0].value.ofType(Coding)', because: 'same' },
  'Practitioner-334081.json': { expression: 'Practitioner.address[0].extension[0].value.ofType(Coding)', because: 'same' },
  'Practitioner-3719500.json': { expression: 'Practitioner.address[0].extension[0].value.ofType(Coding)', because: 'same' },
  'Bundle-bundle-example.json': { expression: 'Bundle.entry[1].resource.meta.profile[0]', because: 'PhdDevice (hl7.fhir.uv.phd) is not available' },
  'Device-phd-74E8FFFEFF051C00.json': { expression: 'Device.meta.profile[0]', because: 'PhdDevice (hl7.fhir.uv.phd) is not available' },
  'Bundle-a9c10f8a-882d-4000-a280-7150e0aeb478.json': { expression: 'Bundle.meta.profile[0]', because: 'IHE MHD 4.2.3 is not available' },
  'DocumentReference-exemple-pdsm-documentreference.json': { expression: 'DocumentReference', because: 'contained Practitioner has meta.lastUpdated (dom-4) and is not referenced (dom-3); author, authenticator and sourcePatientInfo not contained' },
  'DocumentReference-PDSmSimplifiedExample.json': { expression: 'DocumentReference.content[0].attachment.size', because: 'size 250000 and the SHA-1 of no data, for 11 bytes of data' },
  'List-ExampleSubmissionSet.json': { expression: 'List.contained[0].meta.source', because: 'meta.source https://annuaire.sante.fr, as-dp profiles fix https://annuaire.esante.gouv.fr' },
  'Organization-org-example.json': { expression: 'Organization.meta.source', because: 'same meta.source' },
  'Practitioner-PractitionerExample.json': { expression: 'Practitioner.identifier[0].type', because: 'FR Core 2.2.0 requires identifier.type' },
};

describe('examples shipped in the French packages', () => {
  it('are all found', () => {
    expect(examples).toHaveLength(84);
  });
  it.each(examples.filter((e) => !KNOWN_BAD[e.file]).map((e) => [`${e.package} ${e.file}`, e] as const))('%s validates with no error', (_name, ex) => {
    const errors = validator.validate(ex.resource, [], false).filter((i) => i.severity === 'error');
    expect(errors).toEqual([]);
  });
  it.each(examples.filter((e) => KNOWN_BAD[e.file]).map((e) => [`${e.package} ${e.file}`, e] as const))('%s is wrong in its package, and the error says where', (_name, ex) => {
    const errors = validator.validate(ex.resource, [], false).filter((i) => i.severity === 'error');
    expect(errors.map((e) => e.expression?.[0])).toContain(KNOWN_BAD[ex.file].expression);
  });
});
