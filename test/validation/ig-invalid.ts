// The invalid examples of our profiles (ig/invalid/, plain JSON: SUSHI never sees them) and the error each must get.

/** Each invalid example in ig/invalid/ and the one error it must get, at this FHIRPath. */
export const INVALID: Record<string, { expression: string; because: string }> = {
  'Consent-no-patient.json': { expression: 'Consent.patient', because: 'patient 1..1' },
  'Consent-professional-access-naming-an-app.json': { expression: 'Consent', because: 'es-consent-1: a professional access decision names a Device' },
  'AllergyIntolerance-no-code.json': { expression: 'AllergyIntolerance.code', because: 'code 1..1' },
  'Communication-notification-without-event.json': { expression: 'Communication', because: 'es-comm-2: a notification names its event in reasonCode' },
  'Communication-unknown-category.json': { expression: 'Communication.category[0]', because: 'category is bound (required) to our value set; alert is a code of HL7 communication-category, not of ours' },
  'AuditEvent-patient-entity-not-a-patient.json': { expression: 'AuditEvent.entity[0].what.reference', because: "the entity in the slice 'patient' (role object-role#1) names an Organization, not a FR Core Patient" },
};
