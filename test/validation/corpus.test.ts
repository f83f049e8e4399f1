import { loadValidator } from '../../src/validation';
import { packageExamples } from '../../src/validation/packages';
import { testConfig } from '../helpers/engines';

/**
 * Invalid variants of the French package examples: each must be rejected with an error whose
 * FHIRPath expression names the faulty element.
 */
const validator = loadValidator({ cacheDir: testConfig().validationCacheDir });
type R = Record<string, any>;
const examples = new Map(packageExamples().map((e) => [e.file, e.resource as R]));
const PDSM = 'DocumentReference-PDSmSimplifiedExample.json';
const base = (file: string): R => {
  const r = structuredClone(examples.get(file)!);
  if (file === PDSM) {
    // the package states a size and hash that are not those of its data (profiles/README.md)
    r.content[0].attachment.size = 11;
    r.content[0].attachment.hash = 'Ck1VqNd45QIvq3AZd8XYQLvEhtA=';
  }
  return r;
};
const PATIENT = 'Patient-FRCorePatientExample.json';
const GLUCOSE = 'Observation-ExampleMesObservationGlucose001.json';
const BP = 'Observation-ExampleMesFrObservationBP001.json';
const PRACT = 'Practitioner-FRCorePractitionerExample.json';
const APPT = 'Appointment-FRCoreAppointmentExample.json';

type Variant = [name: string, file: string, mutate: (r: R) => void, expression: string];

const variants: Variant[] = [
  // missing required elements
  ['Patient INS without identifier', PATIENT, (r) => delete r.identifier, 'Patient.identifier'],
  ['INS-NIR identifier without value', PATIENT, (r) => delete r.identifier[0].value, 'Patient.identifier[0].value'],
  ['INS-NIR identifier without system', PATIENT, (r) => delete r.identifier[0].system, 'Patient.identifier[0].system'],
  ['INS-NIR identifier without use', PATIENT, (r) => delete r.identifier[0].use, 'Patient.identifier[0].use'],
  ['glucose without status', GLUCOSE, (r) => delete r.status, 'Observation.status'],
  ['glucose without code', GLUCOSE, (r) => delete r.code, 'Observation.code'],
  ['glucose without subject', GLUCOSE, (r) => delete r.subject, 'Observation.subject'],
  ['glucose without effective', GLUCOSE, (r) => delete r.effectiveDateTime, 'Observation.effective'],
  ['BP without its components', BP, (r) => delete r.component, 'Observation.component'],
  ['Practitioner identifier without type', PRACT, (r) => delete r.identifier[0].type, 'Practitioner.identifier[0].type'],
  ['Appointment without status', APPT, (r) => delete r.status, 'Appointment.status'],
  ['Appointment without participant', APPT, (r) => delete r.participant, 'Appointment.participant'],
  ['DocumentReference without content', PDSM, (r) => delete r.content, 'DocumentReference.content'],
  ['DocumentReference without status', PDSM, (r) => delete r.status, 'DocumentReference.status'],
  ['contact point use outside contact-point-use', PATIENT, (r) => (r.telecom[0].use = 'office'), 'Patient.telecom[0].use'],
  // cardinality exceeded
  ['two genders', PATIENT, (r) => (r.gender = ['male', 'female']), 'Patient.gender'],
  ['two birth dates', PATIENT, (r) => (r.birthDate = ['1974-12-25', '1975-01-01']), 'Patient.birthDate'],
  ['two codes on glucose', GLUCOSE, (r) => (r.code = [r.code, r.code]), 'Observation.code'],
  ['two statuses', GLUCOSE, (r) => (r.status = ['final', 'final']), 'Observation.status'],
  ['glucose with two values', GLUCOSE, (r) => (r.valueQuantity = [r.valueQuantity, r.valueQuantity]), 'Observation.value.ofType(Quantity)'],
  ['two subjects', GLUCOSE, (r) => (r.subject = [r.subject, r.subject]), 'Observation.subject'],
  // wrong type
  ['active as a string', PATIENT, (r) => (r.active = 'true'), 'Patient.active'],
  ['birthDate as a number', PATIENT, (r) => (r.birthDate = 19741225), 'Patient.birthDate'],
  ['name as a string', PATIENT, (r) => (r.name = 'Durand'), 'Patient.name'],
  ['telecom rank as a string', PATIENT, (r) => (r.telecom[1].rank = '1'), 'Patient.telecom[1].rank'],
  ['glucose value as a string', GLUCOSE, (r) => (r.valueQuantity.value = '92'), 'Observation.value.ofType(Quantity).value'],
  ['glucose value as a CodeableConcept', GLUCOSE, (r) => { delete r.valueQuantity; r.valueString = '92 mg/dL'; }, 'Observation.value.ofType(string)'],
  ['deceased as a string', PATIENT, (r) => { delete r.deceasedBoolean; r.deceasedString = 'no'; }, 'Patient.deceased.ofType(string)'],
  ['subject as a string', GLUCOSE, (r) => (r.subject = 'Patient/1'), 'Observation.subject'],
  // bad primitive format
  ['birthDate with a time', PATIENT, (r) => (r.birthDate = '1974-12-25T10:00:00+01:00'), 'Patient.birthDate'],
  ['birthDate 30 February', PATIENT, (r) => (r.birthDate = '1974-02-30'), 'Patient.birthDate'],
  ['birthDate month 13', PATIENT, (r) => (r.birthDate = '1974-13'), 'Patient.birthDate'],
  ['effective dateTime without time zone', GLUCOSE, (r) => (r.effectiveDateTime = '2022-11-06T10:00:00'), 'Observation.effective.ofType(dateTime)'],
  ['negative positiveInt rank', PATIENT, (r) => (r.telecom[1].rank = 0), 'Patient.telecom[1].rank'],
  ['decimal rank', PATIENT, (r) => (r.telecom[1].rank = 1.5), 'Patient.telecom[1].rank'],
  ['id with a space', PATIENT, (r) => (r.id = 'bad id'), 'Patient.id'],
  ['code with a leading space', PATIENT, (r) => (r.gender = ' male'), 'Patient.gender'],
  ['uri with whitespace', PATIENT, (r) => (r.identifier[0].system = 'urn:oid:1.2.250 .1'), 'Patient.identifier[0].system'],
  ['empty string family', PATIENT, (r) => (r.name[0].family = ''), 'Patient.name[0].family'],
  ['lastUpdated not an instant', PATIENT, (r) => (r.meta.lastUpdated = '2024-01-01'), 'Patient.meta.lastUpdated'],
  ['bad base64 attachment data', PDSM, (r) => (r.content[0].attachment.data = 'not base64!'), 'DocumentReference.content[0].attachment.data'],
  ['integer too large', PATIENT, (r) => (r.telecom[1].rank = 4294967296), 'Patient.telecom[1].rank'],
  // unknown elements
  ['unknown element on Patient', PATIENT, (r) => (r.nickname = 'Pierrot'), 'Patient.nickname'],
  ['unknown element in name', PATIENT, (r) => (r.name[0].surname = 'Durand'), 'Patient.name[0].surname'],
  ['unknown element in identifier', PATIENT, (r) => (r.identifier[0].kind = 'x'), 'Patient.identifier[0].kind'],
  ['unknown element in Observation', GLUCOSE, (r) => (r.unit = 'mg/dL'), 'Observation.unit'],
  ['medplum-only Meta.project', PATIENT, (r) => (r.meta.project = 'p1'), 'Patient.meta.project'],
  ['unknown choice type', GLUCOSE, (r) => { r.valueFoo = 1; }, 'Observation.valueFoo'],
  // required binding violations
  ['gender outside administrative-gender', PATIENT, (r) => (r.gender = 'homme'), 'Patient.gender'],
  ['observation status outside its value set', GLUCOSE, (r) => (r.status = 'done'), 'Observation.status'],
  ['name use outside name-use', PATIENT, (r) => (r.name[0].use = 'birth'), 'Patient.name[0].use'],
  ['telecom system outside contact-point-system', PATIENT, (r) => (r.telecom[0].system = 'fax-machine'), 'Patient.telecom[0].system'],
  ['INS identifier use outside its value set', PATIENT, (r) => (r.identifier[0].use = 'temp'), 'Patient.identifier[0].use'],
  ['address use outside address-use', PATIENT, (r) => (r.address[0].use = 'holiday'), 'Patient.address[0].use'],
  ['appointment status outside its value set', APPT, (r) => (r.status = 'done'), 'Appointment.status'],
  // INS invariants
  ['fr-core-1: VALI identity with no INS identifier', PATIENT, (r) => (r.identifier[0].system = 'urn:oid:1.2.3'), 'Patient'],
  ['fr-core-2: VALI identity with two official identifiers', PATIENT, (r) => r.identifier.push({ ...r.identifier[0], system: 'urn:oid:1.2.250.1.213.1.4.9', type: { coding: [{ system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203', code: 'INS-NIA' }] } }), 'Patient'],
  ['fr-core-1: INS-NIR without its type', PATIENT, (r) => (r.identifier[0].type = { text: 'NIR' }), 'Patient'],
  // wrong slice / fixed and pattern values
  ['INS-NIR identifier with a wrong system', PATIENT, (r) => (r.identifier[0].system = 'urn:oid:1.2.250.1.213.1.4.2'), 'Patient.identifier[0].system'],
  ['BP component code of no slice (systolic missing)', BP, (r) => (r.component[0].code.coding[0].code = '8478-0'), 'Observation.component'],
  ['glucose category without vital-signs', GLUCOSE, (r) => (r.category = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }]), 'Observation.category'],
  ['glucose quantity with a non-UCUM system', GLUCOSE, (r) => (r.valueQuantity.system = 'http://example.org/units'), 'Observation.value.ofType(Quantity).system'],
  // wrong reference target
  ['glucose subject pointing to a Practitioner', GLUCOSE, (r) => (r.subject = { reference: 'Practitioner/1' }), 'Observation.subject.reference'],
  ['document subject pointing to an Organization', PDSM, (r) => (r.subject = { reference: 'Organization/1' }), 'DocumentReference.subject.reference'],
  ['Patient managingOrganization pointing to a Patient', PATIENT, (r) => (r.managingOrganization = { reference: 'Patient/2' }), 'Patient.managingOrganization.reference'],
  ['contained reference to a missing resource', PATIENT, (r) => (r.managingOrganization = { reference: '#nowhere' }), 'Patient.managingOrganization'],
  // bad extension values
  ['birth list given name as a boolean', PATIENT, (r) => { delete r.name[0].extension[0].valueString; r.name[0].extension[0].valueBoolean = true; }, 'Patient.name[0].extension[0].value.ofType(boolean)'],
  ['birthPlace as a string', PATIENT, (r) => { delete r.extension[0].valueAddress; r.extension[0].valueString = 'Ambléon'; }, 'Patient.extension[0].value.ofType(string)'],
  ['extension with both a value and extensions', PATIENT, (r) => (r.extension[1].valueString = 'x'), 'Patient.extension[1]'],
  ['reason for measurement as a Coding', GLUCOSE, (r) => { delete r.extension[0].valueString; r.extension[0].valueCoding = { code: 'x' }; }, 'Observation.extension[0].value.ofType(Coding)'],
  ['unknown modifier extension', PATIENT, (r) => (r.modifierExtension = [{ url: 'http://example.org/unknown', valueBoolean: true }]), 'Patient.modifierExtension[0]'],
  ['empty element (ele-1)', PATIENT, (r) => (r.maritalStatus = {}), 'Patient.maritalStatus'],
  ['meta.profile unknown', PATIENT, (r) => r.meta.profile.push('http://example.org/unknown-profile'), 'Patient.meta.profile[1]'],
];

describe('invalid variants of the French examples', () => {
  it('the corpus has at least 60 variants', () => {
    expect(variants.length).toBeGreaterThanOrEqual(60);
  });
  it('the examples they start from are valid', () => {
    for (const f of [PATIENT, GLUCOSE, BP, PRACT, APPT, PDSM]) {
      expect([f, validator.validate(base(f), [], false).filter((i) => i.severity === 'error')]).toEqual([f, []]);
    }
  });
  it.each(variants)('%s is rejected at its element', (_name, file, mutate, expression) => {
    const r = base(file);
    mutate(r);
    const errors = validator.validate(r, [], false).filter((i) => i.severity === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.flatMap((e) => e.expression ?? [])).toContain(expression);
    for (const e of errors) {
      expect(e.diagnostics.length).toBeGreaterThan(0);
      expect(e.code).toBeTruthy();
    }
  });
});
