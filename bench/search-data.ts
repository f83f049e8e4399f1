/**
 * The data set of the search benchmark, generated in code: blocks of 200 resources, each a
 * practitioner (RPPS identifier) with the 10 patients whose general practitioner they are (FR Core
 * Patients with INS identifiers, from patients.ts), and for each patient 4 DocumentReferences,
 * 2 Appointments with that practitioner and 12 or 13 Observations (129 per block). 500 blocks make
 * 100,000 resources for 5,000 patients and 500 practitioners; 50 blocks make 10,000. Growing the
 * data set adds blocks, so what one patient or one practitioner has stays the same at every size
 * and only the size of the database changes: a query whose latency grows does so because of the
 * database, not because it returns more.
 *
 * Everything is a pure function of the block number and of `now` (the start of the run), and the
 * facts the queries need (a document's type and date, an observation's code and time, an
 * appointment's start) are kept in `Facts`, so the expected answer of a query can be computed.
 */
import type { Appointment, DocumentReference, Observation, Patient, Practitioner, Resource } from 'fhir/r4';
import { INS_SYSTEM, insValue, makePatient } from './patients';

export { INS_SYSTEM, insValue };
export const RPPS_SYSTEM = 'https://rpps.esante.gouv.fr';
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const GLUCOSE = '2339-0';

export const BLOCK_SIZE = 200;
export const PATIENTS_PER_BLOCK = 10;
const DOCS_PER_PATIENT = 4;
const APPOINTMENTS_PER_PATIENT = 2;
/** Observations of the patients of a block: 13 each, the last patient 12 (so that a block is 200 resources). */
const obsCount = (k: number) => (k === PATIENTS_PER_BLOCK - 1 ? 12 : 13);

const DAY = 86_400_000;
const WEEK = 7 * DAY;
const THREE_YEARS_MIN = 3 * 365 * 24 * 60;

export const DOC_TYPES: [code: string, display: string][] = [
  ['11488-4', 'Consult note'],
  ['18842-5', 'Discharge summary'],
  ['11502-2', 'Laboratory report'],
  ['18748-4', 'Diagnostic imaging study'],
  ['57833-6', 'Prescription for medication'],
];

interface ObsKind {
  code: string;
  display: string;
  unit: string;
  ucum: string;
  category: 'vital-signs' | 'laboratory';
  value: (h: number) => number;
}
const GLUCOSE_KIND: ObsKind = { code: GLUCOSE, display: 'Glucose [Mass/volume] in Blood', unit: 'mg/dL', ucum: 'mg/dL', category: 'laboratory', value: (h) => 70 + (h % 1100) / 10 };
/** The kinds of observations, in the order a patient's observations cycle through them (glucose twice). */
export const OBS_KINDS: ObsKind[] = [
  GLUCOSE_KIND,
  { code: '29463-7', display: 'Body weight', unit: 'kg', ucum: 'kg', category: 'vital-signs', value: (h) => 45 + (h % 600) / 10 },
  { code: '8867-4', display: 'Heart rate', unit: 'beats/minute', ucum: '/min', category: 'vital-signs', value: (h) => 50 + (h % 60) },
  GLUCOSE_KIND,
  { code: '8480-6', display: 'Systolic blood pressure', unit: 'mmHg', ucum: 'mm[Hg]', category: 'vital-signs', value: (h) => 100 + (h % 70) },
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', unit: '%', ucum: '%', category: 'laboratory', value: (h) => 4.5 + (h % 60) / 10 },
];

/** What the queries need to know about the loaded resources (indexes are global, from 0). */
export interface Facts {
  /** per patient: its practitioner (block) */
  patientBlock: number[];
  /** per document: patient, LOINC type, date (epoch ms) */
  docs: { patient: number; type: string; date: number }[];
  /** per observation: patient, LOINC code, effective time (epoch ms) */
  observations: { patient: number; code: string; time: number }[];
  /** per appointment: patient, practitioner (block), start (epoch ms) */
  appointments: { patient: number; practitioner: number; start: number }[];
}

export const emptyFacts = (): Facts => ({ patientBlock: [], docs: [], observations: [], appointments: [] });

/** One entry of a Bundle before it is sent: `urn` is its fullUrl (urn:uuid:...). */
export interface Entry {
  urn: string;
  resource: Resource & { resourceType: string };
  /** the entity this entry is, so its server id can be recorded: ['Patient', 12] */
  what: ['Practitioner' | 'Patient' | 'DocumentReference' | 'Observation' | 'Appointment', number];
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');
const urnOf = (n: number) => `urn:uuid:00000000-0000-4000-a000-${pad(n, 12)}`;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function hash(a: number, b: number, salt: number): number {
  let h = Math.imul(a + 1, 2654435761) ^ Math.imul(b + 7, 40503) ^ Math.imul(salt + 13, 0x27d4eb2d);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Monday 00:00 UTC of the week after `now`. */
export function nextMonday(now: number): number {
  const d = new Date(now);
  const today = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const dow = (d.getUTCDay() + 6) % 7; // Monday = 0
  return today + (7 - dow) * DAY;
}

export const rppsOf = (block: number) => `10${pad(block, 9)}`;
const FAMILY = ['Roux', 'Vincent', 'Fournier', 'Morel', 'Girard', 'André', 'Lefèvre', 'Mercier', 'Dupont', 'Lambert', 'Bonnet', 'François'];
const GIVEN = ['Claire', 'Thomas', 'Sophie', 'Nicolas', 'Isabelle', 'Julien', 'Nathalie', 'Pierre', 'Émilie', 'Stéphane'];

/** The entries of block `b` (practitioner b, patients 10b..10b+9), recording their facts. */
export function blockEntries(b: number, now: number, facts: Facts): Entry[] {
  const out: Entry[] = [];
  let n = b * BLOCK_SIZE;
  const practitionerUrn = urnOf(n++);
  const practitioner: Practitioner = {
    resourceType: 'Practitioner',
    identifier: [{ use: 'official', system: RPPS_SYSTEM, value: rppsOf(b) }],
    active: true,
    name: [{ use: 'official', family: FAMILY[hash(b, 0, 1) % FAMILY.length], given: [GIVEN[hash(b, 0, 2) % GIVEN.length]], prefix: ['Dr'] }],
    telecom: [{ system: 'phone', value: `01 ${pad(hash(b, 0, 3) % 100, 2)} ${pad(hash(b, 0, 4) % 100, 2)} ${pad(hash(b, 0, 5) % 100, 2)} ${pad(b % 100, 2)}`, use: 'work' }],
  };
  out.push({ urn: practitionerUrn, resource: practitioner, what: ['Practitioner', b] });
  const monday = nextMonday(now);
  for (let k = 0; k < PATIENTS_PER_BLOCK; k++) {
    const p = b * PATIENTS_PER_BLOCK + k;
    const patientUrn = urnOf(n++);
    facts.patientBlock[p] = b;
    out.push({ urn: patientUrn, resource: { ...makePatient(p), generalPractitioner: [{ reference: practitionerUrn }] } as Patient, what: ['Patient', p] });
    for (let d = 0; d < DOCS_PER_PATIENT; d++) {
      const h = hash(p, d, 10);
      const [code, display] = DOC_TYPES[h % DOC_TYPES.length];
      const date = now - (1 + (hash(p, d, 11) % THREE_YEARS_MIN)) * 60_000;
      const doc: DocumentReference = {
        resourceType: 'DocumentReference',
        status: 'current',
        docStatus: 'final',
        type: { coding: [{ system: LOINC, code, display }] },
        category: [{ coding: [{ system: 'http://loinc.org', code: code === '11502-2' ? '26436-6' : '47039-3', display: code === '11502-2' ? 'Laboratory studies' : 'Inpatient Admission history and physical note' }] }],
        subject: { reference: patientUrn },
        date: iso(date),
        author: [{ reference: practitionerUrn }],
        description: `${display} ${new Date(date).toISOString().slice(0, 10)}`,
        content: [{ attachment: { contentType: 'application/pdf', language: 'fr-FR', url: `https://ged.example.fr/documents/${p}-${d}.pdf`, size: 20_000 + (h % 500_000), title: `${display}.pdf`, creation: iso(date) } }],
      };
      facts.docs.push({ patient: p, type: code, date: Math.floor(date / 1000) * 1000 });
      out.push({ urn: urnOf(n++), resource: doc, what: ['DocumentReference', facts.docs.length - 1] });
    }
    for (let a = 0; a < APPOINTMENTS_PER_PATIENT; a++) {
      // weeks -2 .. +3 around next week; each practitioner has 4 of their 20 appointments next week
      const week = ((k * APPOINTMENTS_PER_PATIENT + a) % 6) - 2;
      const start = monday + week * WEEK + (hash(p, a, 20) % 5) * DAY + (8 + (hash(p, a, 21) % 10)) * 3_600_000 + (hash(p, a, 22) % 2) * 1_800_000;
      const appointment: Appointment = {
        resourceType: 'Appointment',
        status: start < now ? 'fulfilled' : 'booked',
        serviceType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/service-type', code: '124', display: 'General Practice' }] }],
        appointmentType: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0276', code: a === 0 ? 'ROUTINE' : 'FOLLOWUP' }] },
        description: a === 0 ? 'Consultation de suivi' : 'Renouvellement d’ordonnance',
        start: iso(start),
        end: iso(start + 30 * 60_000),
        minutesDuration: 30,
        participant: [
          { actor: { reference: patientUrn }, required: 'required', status: 'accepted' },
          { actor: { reference: practitionerUrn }, required: 'required', status: 'accepted' },
        ],
      };
      facts.appointments.push({ patient: p, practitioner: b, start });
      out.push({ urn: urnOf(n++), resource: appointment, what: ['Appointment', facts.appointments.length - 1] });
    }
    for (let o = 0; o < obsCount(k); o++) {
      const kind = OBS_KINDS[o % OBS_KINDS.length];
      const time = now - (1 + (hash(p, o, 30) % THREE_YEARS_MIN)) * 60_000;
      const obs: Observation = {
        resourceType: 'Observation',
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: kind.category }] }],
        code: { coding: [{ system: LOINC, code: kind.code, display: kind.display }], text: kind.display },
        subject: { reference: patientUrn },
        effectiveDateTime: iso(time),
        valueQuantity: { value: Math.round(kind.value(hash(p, o, 31)) * 10) / 10, unit: kind.unit, system: UCUM, code: kind.ucum },
      };
      facts.observations.push({ patient: p, code: kind.code, time: Math.floor(time / 1000) * 1000 });
      out.push({ urn: urnOf(n++), resource: obs, what: ['Observation', facts.observations.length - 1] });
    }
  }
  if (out.length !== BLOCK_SIZE) throw new Error(`block ${b} has ${out.length} entries, not ${BLOCK_SIZE}`);
  return out;
}

export const ISO = iso;
export { DAY, WEEK };
