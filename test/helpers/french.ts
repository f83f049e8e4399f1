/**
 * French resources of a personal health space, as the French profiles want them (FR Core Patient,
 * Patient INS, Practitioner, Appointment; our Consent, Communication and AllergyIntolerance): the
 * builders the search and client suites store and search.
 */
type R = Record<string, unknown>;

export const SNOMED = 'http://snomed.info/sct';
export const RPPS = 'https://rpps.esante.gouv.fr';
export const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
export const SERVICE_TYPE = 'http://terminology.hl7.org/CodeSystem/service-type';
export const SPECIALTY = 'https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale';
export const ES = 'https://espace-sante.example/fhir';
export const CONSENT_CATEGORY = `${ES}/CodeSystem/espace-sante-consent-category`;
export const COMMUNICATION_CATEGORY = `${ES}/CodeSystem/espace-sante-communication-category`;
export const NOTIFICATION_EVENT = `${ES}/CodeSystem/espace-sante-notification-event`;
export const ALLERGY_CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
const FR_CORE_ID_TYPE = 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203';

const ref = (reference: string) => ({ reference });

/** An INS-NIR: the 13 digits and their key, 97 − (NIR mod 97). */
export function insNir(digits13: string): string {
  return `${digits13}${String(97n - (BigInt(digits13) % 97n)).padStart(2, '0')}`;
}

/**
 * An FR Core Patient; with `ins`, an FR Core Patient INS, with the identity traits of the INS: birth
 * name, first given name and the list of given names at birth, sex, birth date, birthplace (INSEE code).
 */
export function frPatient(p: { family: string; given: string[]; gender: 'female' | 'male'; birthDate: string; city?: string; ins?: { nir: string; birthPlace: { insee: string; city: string } } }): R {
  return {
    resourceType: 'Patient',
    ...(p.ins && {
      extension: [
        { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code', valueCoding: { system: 'https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM', code: p.ins.birthPlace.insee } }], city: p.ins.birthPlace.city } },
        { url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability', extension: [{ url: 'identityStatus', valueCoding: { system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445', code: 'VALI' } }] },
      ],
      identifier: [{ use: 'official', type: { coding: [{ system: FR_CORE_ID_TYPE, code: 'INS-NIR' }] }, system: INS_NIR, value: insNir(p.ins.nir) }],
    }),
    active: true,
    name: [
      p.ins
        ? { extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name', valueString: p.given.join(' ') }], use: 'official', family: p.family, given: [p.given[0]] }
        : { use: 'official', family: p.family, given: p.given },
    ],
    gender: p.gender,
    birthDate: p.birthDate,
    ...(p.city && { address: [{ use: 'home', city: p.city, country: 'France' }] }),
  };
}

/** An FR Core Practitioner with their RPPS number. */
export function frPractitioner(p: { family: string; given: string; rpps: string; prefix: 'MME' | 'M' }): R {
  return {
    resourceType: 'Practitioner',
    identifier: [{ use: 'official', type: { coding: [{ system: FR_CORE_ID_TYPE, code: 'RPPS' }] }, system: RPPS, value: p.rpps }],
    active: true,
    name: [{ family: p.family, given: [p.given], prefix: [p.prefix], suffix: ['DR'] }],
  };
}

export const GENERAL_PRACTICE = { service: '124', serviceDisplay: 'General Practice', specialty: 'SM54', specialtyDisplay: 'Médecine générale (SM)' };
export const CARDIOLOGY = { service: '165', serviceDisplay: 'Cardiology', specialty: 'SM04', specialtyDisplay: 'Cardiologie et Maladies vasculaires (SM)' };
export const DERMATOLOGY = { service: '168', serviceDisplay: 'Dermatology', specialty: 'SM15', specialtyDisplay: 'Dermatologie et Vénéréologie (SM)' };

/** An FR Core Appointment of a patient with a practitioner, the patient as its operator (who booked it). */
export function frAppointment(a: { patient: string; practitioner: string; start: string; end: string; status: string; kind: typeof GENERAL_PRACTICE; description: string; created: string }): R {
  return {
    resourceType: 'Appointment',
    extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-appointment-operator', valueReference: ref(a.patient) }],
    status: a.status,
    ...(a.status === 'cancelled' && { cancelationReason: { text: 'Annulé par la patiente' } }),
    serviceType: [{ coding: [{ system: SERVICE_TYPE, code: a.kind.service, display: a.kind.serviceDisplay }] }],
    specialty: [{ coding: [{ system: SPECIALTY, code: a.kind.specialty, display: a.kind.specialtyDisplay }] }],
    description: a.description,
    start: a.start,
    end: a.end,
    minutesDuration: (Date.parse(a.end) - Date.parse(a.start)) / 60000,
    created: a.created,
    participant: [
      { actor: ref(a.patient), required: 'required', status: a.status === 'cancelled' ? 'declined' : 'accepted' },
      { actor: ref(a.practitioner), required: 'required', status: a.status === 'proposed' ? 'needs-action' : 'accepted' },
    ],
  };
}

/** An access decision of the person: a professional allowed or blocked, or a catalogue app authorized to sync. */
export function esConsent(c: { patient: string; category: 'professional-access' | 'app-data-sync'; type: 'permit' | 'deny'; actor: string; dateTime: string; start: string; end?: string; status?: string }): R {
  return {
    resourceType: 'Consent',
    status: c.status ?? 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: CONSENT_CATEGORY, code: c.category }] }],
    patient: ref(c.patient),
    dateTime: c.dateTime,
    performer: [ref(c.patient)],
    policy: [{ uri: `${ES}/policy/access-rules` }],
    provision: {
      type: c.type,
      period: { start: c.start, ...(c.end && { end: c.end }) },
      actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: ref(c.actor) }],
      ...(c.category === 'app-data-sync' && {
        action: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'collect' }] }],
        class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }],
      }),
    },
  };
}

/** A secure message between the person and a professional. */
export function esMessage(m: { subject: string; sender: string; recipient: string; sent?: string; text: string; status?: string }): R {
  return {
    resourceType: 'Communication',
    status: m.status ?? 'completed',
    category: [{ coding: [{ system: COMMUNICATION_CATEGORY, code: 'message' }] }],
    subject: ref(m.subject),
    ...(m.sent && { sent: m.sent }),
    sender: ref(m.sender),
    recipient: [ref(m.recipient)],
    payload: [{ contentString: m.text }],
  };
}

/** A notification the space sends to the person about an event of their space. */
export function esNotification(n: { patient: string; event: string; about?: string; sent: string; text: string }): R {
  return {
    resourceType: 'Communication',
    status: 'completed',
    category: [{ coding: [{ system: COMMUNICATION_CATEGORY, code: 'notification' }] }],
    subject: ref(n.patient),
    sent: n.sent,
    recipient: [ref(n.patient)],
    reasonCode: [{ coding: [{ system: NOTIFICATION_EVENT, code: n.event }] }],
    ...(n.about && { about: [ref(n.about)] }),
    payload: [{ contentString: n.text }],
  };
}

/** An allergy or intolerance of the person's medical profile, coded in SNOMED CT. */
export function esAllergy(a: { patient: string; code: string; display: string; text?: string; category: 'food' | 'medication' | 'environment'; clinicalStatus: 'active' | 'inactive' | 'resolved'; criticality?: 'low' | 'high' | 'unable-to-assess'; recordedDate: string; recorder?: string; reaction?: { code: string; display: string; severity: 'mild' | 'moderate' | 'severe' } }): R {
  return {
    resourceType: 'AllergyIntolerance',
    clinicalStatus: { coding: [{ system: ALLERGY_CLINICAL, code: a.clinicalStatus }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' }] },
    type: 'allergy',
    category: [a.category],
    ...(a.criticality && { criticality: a.criticality }),
    code: { coding: [{ system: SNOMED, code: a.code, display: a.display }], ...(a.text && { text: a.text }) },
    patient: ref(a.patient),
    recordedDate: a.recordedDate,
    ...(a.recorder && { recorder: ref(a.recorder) }),
    ...(a.reaction && { reaction: [{ manifestation: [{ coding: [{ system: SNOMED, code: a.reaction.code, display: a.reaction.display }] }], severity: a.reaction.severity }] }),
  };
}
