/**
 * French resources of a personal health space, as the French profiles want them (FR Core Patient,
 * Patient INS, Practitioner, Appointment; the PDSm DocumentReference; the Mesures de santé blood
 * pressure; our Consent, Communication and AllergyIntolerance): the builders the suites store and
 * search, with the French profiles required as users get them (REQUIRED_PROFILES=fr).
 */
import { createHash } from 'node:crypto';
import { PDSM_SIMPLIFIED_PUBLISH } from '../../src/validation/required-profiles';

type R = Record<string, unknown>;

export const SNOMED = 'http://snomed.info/sct';
export const RPPS = 'https://rpps.esante.gouv.fr';
export const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
export const INS_NIA = 'urn:oid:1.2.250.1.213.1.4.9';
/** the system of the identifiers a hospital gives its patients (IPP) */
export const IPP = 'urn:oid:1.2.250.1.71.4.2.7';
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const SERVICE_TYPE = 'http://terminology.hl7.org/CodeSystem/service-type';
export const SPECIALTY = 'https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale';
export const ES = 'https://espace-sante.example/fhir';
export const CONSENT_CATEGORY = `${ES}/CodeSystem/espace-sante-consent-category`;
export const COMMUNICATION_CATEGORY = `${ES}/CodeSystem/espace-sante-communication-category`;
export const NOTIFICATION_EVENT = `${ES}/CodeSystem/espace-sante-notification-event`;
export const ALLERGY_CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
const FR_CORE_ID_TYPE = 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203';

const ref = (reference: string) => ({ reference });
const ippOf = (value: string) => ({ use: 'usual', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PI' }] }, system: IPP, value });

/** An INS-NIR: the 13 digits and their key, 97 − (NIR mod 97). */
export function insNir(digits13: string): string {
  return `${digits13}${String(97n - (BigInt(digits13) % 97n)).padStart(2, '0')}`;
}

/**
 * An FR Core Patient; with `ins`, an FR Core Patient INS, with the identity traits of the INS: birth
 * name, first given name and the list of given names at birth, sex, birth date, birthplace (INSEE code).
 * The INS is an INS-NIR (`nir`) or, for a person waiting for their NIR, an INS-NIA (`nia`): 13 digits,
 * its key added. With `ipp`, the identifier a hospital gives the person (IPP) comes first.
 */
export function frPatient(p: {
  family: string;
  given: string[];
  gender: 'female' | 'male';
  birthDate: string;
  city?: string;
  ins?: ({ nir: string } | { nia: string }) & { birthPlace: { insee: string; city: string } };
  ipp?: string;
}): R {
  const ins = p.ins && ('nir' in p.ins ? { code: 'INS-NIR', system: INS_NIR, value: insNir(p.ins.nir) } : { code: 'INS-NIA', system: INS_NIA, value: insNir(p.ins.nia) });
  const identifier = [
    ...(p.ipp ? [ippOf(p.ipp)] : []),
    ...(ins ? [{ use: 'official', type: { coding: [{ system: FR_CORE_ID_TYPE, code: ins.code }] }, system: ins.system, value: ins.value }] : []),
  ];
  return {
    resourceType: 'Patient',
    ...(p.ins && {
      extension: [
        { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code', valueCoding: { system: 'https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM', code: p.ins.birthPlace.insee } }], city: p.ins.birthPlace.city } },
        { url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability', extension: [{ url: 'identityStatus', valueCoding: { system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445', code: 'VALI' } }] },
      ],
    }),
    ...(identifier.length > 0 && { identifier }),
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

const TRE = (table: string) => `https://mos.esante.gouv.fr/NOS/${table}/FHIR/${table.replace('_', '-')}`;
export const DISCHARGE_SUMMARY = { code: '34133-9', display: 'Synthèse d’épisode de soins' };
export const CONSULTATION_NOTE = { code: '11488-4', display: 'Compte rendu de consultation' };
export const CONFIDENTIALITY = TRE('TRE_A08-HL7Confidentiality');
export const VISIBILITY = TRE('TRE_A07-StatutVisibiliteDocument');

/** An attachment's inline data with its size and SHA-1, as PDSm checks them. */
function inlineFile(text: string) {
  const bytes = Buffer.from(text);
  return { data: bytes.toString('base64'), size: bytes.length, hash: createHash('sha1').update(bytes).digest('base64') };
}

/** The hospital doctor who writes the reports of the suites. */
export const DR_LECLERC = { family: 'Leclerc', given: 'Sophie', rpps: '10101201234', prefix: 'MME' } as const;

/**
 * A report of the document vault as a hospital or a practitioner's software deposits it (PDSm, IHE MHD):
 * the person as the producer knows them (`sourcePatient`: their IPP, name, general practitioner) is
 * contained; the custodian is the space that keeps it. The PDF is a Binary (`binary`:
 * the comprehensive DocumentReference, its author contained) or is sent inline (`inline`, its text:
 * the simplified publish, the author named by their RPPS number, the size and SHA-1 of those bytes).
 */
export function pdsmDocument(
  d: {
    patient: string;
    sourcePatient: { ipp: string; family: string; given: string; id?: string; generalPractitioner?: string };
    author?: Parameters<typeof frPractitioner>[0];
    uniqueId: string;
    entryUuid?: string;
    type?: typeof DISCHARGE_SUMMARY;
    title: string;
    date: string;
    period: { start: string; end?: string };
  } & ({ binary: string } | { inline: string }),
): R {
  const author = d.author ?? DR_LECLERC;
  const source = d.sourcePatient;
  const sourceId = source.id ?? 'patient';
  const sourcePatient = { resourceType: 'Patient', id: sourceId, identifier: [ippOf(source.ipp)], name: [{ family: source.family, given: [source.given] }], ...(source.generalPractitioner && { generalPractitioner: [ref(source.generalPractitioner)] }) };
  const rpps = { identifier: { system: RPPS, value: author.rpps } };
  const simplified = 'inline' in d;
  const file = 'inline' in d ? inlineFile(d.inline) : { url: d.binary, size: 48213, hash: 'q1Bc6S6mTfVIVd4ZtsN/37IOKAI=' };
  return {
    resourceType: 'DocumentReference',
    ...(simplified ? { meta: { profile: [PDSM_SIMPLIFIED_PUBLISH] }, contained: [sourcePatient] } : { contained: [{ ...frPractitioner(author), id: 'auteur' }, sourcePatient] }),
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: d.uniqueId },
    ...(d.entryUuid && { identifier: [{ system: 'urn:ietf:rfc:3986', value: d.entryUuid }] }),
    status: 'current',
    type: { coding: [{ system: LOINC, ...(d.type ?? DISCHARGE_SUMMARY) }] },
    category: [{ coding: [{ system: TRE('TRE_A03-ClasseDocument'), code: '10', display: 'Compte rendu' }] }],
    subject: ref(d.patient),
    date: d.date,
    author: [simplified ? rpps : { reference: '#auteur', ...rpps }],
    custodian: { display: 'Mon espace santé' },
    securityLabel: [{ coding: [{ system: CONFIDENTIALITY, code: 'N', display: 'Normal' }] }],
    content: [
      {
        attachment: { contentType: 'application/pdf', language: 'fr-FR', ...file, title: d.title, creation: d.date },
        format: { system: TRE('TRE_A11-IheFormatCode'), code: 'urn:ihe:iti:xds-sd:pdf:2008', display: 'Document à corps non structuré en Pdf/A-1' },
      },
    ],
    context: {
      period: d.period,
      facilityType: { coding: [{ system: TRE('TRE_R02-SecteurActivite'), code: 'SA01', display: 'Etablissement public de santé' }] },
      practiceSetting: { coding: [{ system: TRE('TRE_A01-CadreExercice'), code: 'ETABLISSEMENT', display: 'Etablissement de santé' }] },
      sourcePatientInfo: ref(`#${sourceId}`),
    },
  };
}

/** Observation.category: `vital-signs` for the Mesures de santé, `social-history`, `laboratory`... */
export const observationCategory = (code: string) => [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code }] }];

/** A blood pressure of the Mesures de santé (systolic and diastolic, mm[Hg]), as a connected monitor sends it. */
export function bloodPressure(b: { patient: string; at: string; systolic: number; diastolic: number }): R {
  const mmHg = (value: number) => ({ value, unit: 'mm[Hg]', system: UCUM, code: 'mm[Hg]' });
  return {
    resourceType: 'Observation',
    status: 'final',
    category: observationCategory('vital-signs'),
    code: { coding: [{ system: LOINC, code: '85354-9' }] },
    subject: ref(b.patient),
    effectiveDateTime: b.at,
    component: [
      { code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }] }, valueQuantity: mmHg(b.systolic) },
      { code: { coding: [{ system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' }] }, valueQuantity: mmHg(b.diastolic) },
    ],
  };
}
