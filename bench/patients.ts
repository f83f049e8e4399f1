/**
 * FR Core Patients for the benchmark, generated in code (no file read at run time).
 *
 * Shaped after the FR Core 2.2.0 example `Patient-FRCorePatientExample` (hl7.fhir.fr.core package,
 * package/example/): birth place and identity-reliability extensions, an INS identifier
 * (system urn:oid:1.2.250.1.213.1.4.8, type INS-NIR), an official name with the birth-list given
 * names, telecoms, an address and an emergency contact. The generated narrative (`text`) of the
 * example is left out. Every patient is a pure function of its index, so the same index always
 * gives the same patient and distinct indexes give distinct INS values.
 */
import type { Patient } from 'fhir/r4';

export const INS_SYSTEM = 'urn:oid:1.2.250.1.213.1.4.8';
export const FR_CORE_PATIENT = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient';
export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const FAMILY = [
  'Martin', 'Bernard', 'Dubois', 'Lefèvre', 'Moreau', 'Laurent', 'Lemaître', 'Girard', 'Rousseau', 'Fournier',
  'Hébert', 'Chevalier', 'Gauthier', 'Rivière', 'Brisbois', 'Périer', 'Lécuyer', 'Bézier', 'Février', 'Noël',
  'Dupré', 'Mercier', 'Bonnet', 'Fontaine', 'Leroy', 'Durand', 'Lefébure', 'Caré', 'Thérault', 'Aubépine',
];
const MALE = ['Jérôme', 'Benoît', 'Gérard', 'Aurélien', 'Théo', 'Raphaël', 'Loïc', 'Côme', 'Noé', 'François', 'Hervé', 'Valéry', 'Joël', 'André', 'Éric'];
const FEMALE = ['Hélène', 'Chloé', 'Françoise', 'Anaïs', 'Zoé', 'Léa', 'Céline', 'Agnès', 'Mégane', 'Maëlle', 'Bérénice', 'Inès', 'Éloïse', 'Noémie', 'Gaëlle'];
const CITIES: [city: string, postalCode: string, insee: string][] = [
  ['Orléans', '45000', '45234'], ['Besançon', '25000', '25056'], ['Nîmes', '30000', '30189'], ['Saint-Étienne', '42000', '42218'],
  ['Angoulême', '16000', '16015'], ['Périgueux', '24000', '24322'], ['Montréal-la-Cluse', '01460', '01265'], ['Ambléon', '01300', '01006'],
  ['Sèvres', '92310', '92072'], ['Évry-Courcouronnes', '91000', '91228'],
];
const STREETS = ['rue Troussier', 'avenue de la République', 'rue de l’Église', 'place du Marché', 'chemin des Écoliers', 'boulevard Pasteur', 'allée des Châtaigniers'];

const pick = <T>(list: T[], n: number): T => list[n % list.length];
const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** A small integer hash, so the fields do not all move in lock-step with the index. */
function mix(i: number, salt: number): number {
  let h = (i + 1) * 2654435761 + salt * 40503;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * 13 digits in the order of a NIR without its key: sex (1), year (2), month (2), then the index on
 * 8 digits, which makes values distinct for indexes below 10^8.
 */
export function insValue(i: number): string {
  const male = mix(i, 1) % 2 === 0;
  const year = 1930 + (mix(i, 2) % 90);
  const month = 1 + (mix(i, 3) % 12);
  return `${male ? 1 : 2}${pad(year % 100, 2)}${pad(month, 2)}${pad(i % 1e8, 8)}`;
}

/** The i-th FR Core Patient, without id (for a create). */
export function makePatient(i: number, revision = 0): Patient {
  const male = mix(i, 1) % 2 === 0;
  const year = 1930 + (mix(i, 2) % 90);
  const month = 1 + (mix(i, 3) % 12);
  const day = 1 + (mix(i, 4) % 28);
  const family = pick(FAMILY, mix(i, 5));
  const given = pick(male ? MALE : FEMALE, mix(i, 6));
  const second = pick(male ? MALE : FEMALE, mix(i, 7));
  const [city, postalCode, insee] = pick(CITIES, mix(i, 8));
  const line = `${1 + (mix(i, 9) % 300)} ${pick(STREETS, mix(i, 10))}`;
  const phone = (salt: number, prefix: string) => `${prefix} ${pad(mix(i, salt) % 100, 2)} ${pad(mix(i, salt + 1) % 100, 2)} ${pad(mix(i, salt + 2) % 100, 2)} ${pad((mix(i, salt + 3) + revision) % 100, 2)}`;
  const [birthCity, , birthInsee] = pick(CITIES, mix(i, 11));
  return {
    resourceType: 'Patient',
    meta: { profile: [FR_CORE_PATIENT] },
    extension: [
      {
        url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
        valueAddress: {
          extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code', valueCoding: { system: 'https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM', code: birthInsee } }],
          city: birthCity,
        },
      },
      {
        extension: [{ url: 'identityStatus', valueCoding: { system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445', code: 'VALI' } }],
        url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability',
      },
    ],
    identifier: [
      {
        use: 'official',
        type: { coding: [{ system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203', code: 'INS-NIR' }] },
        system: INS_SYSTEM,
        value: insValue(i),
      },
    ],
    active: true,
    name: [
      {
        extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name', valueString: `${given} ${second}` }],
        use: 'official',
        family,
        given: [given],
      },
    ],
    telecom: [
      { system: 'phone', value: phone(20, '01'), use: 'home' },
      { system: 'phone', value: phone(30, '06'), use: 'mobile', rank: 1 },
    ],
    gender: male ? 'male' : 'female',
    birthDate: `${year}-${pad(month, 2)}-${pad(day, 2)}`,
    deceasedBoolean: false,
    address: [
      {
        use: 'home',
        type: 'both',
        text: `${line}, ${postalCode} ${city}, France`,
        line: [line],
        city,
        postalCode,
        period: { start: '2018-06-01' },
        extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code', valueCoding: { system: 'https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM', code: insee } }],
      },
    ],
    contact: [
      {
        relationship: [
          {
            extension: [{ url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-contact-relationship-category', valueCode: 'role' }],
            coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass', code: 'ECON', display: 'personne à prévenir en cas d’urgence' }],
          },
        ],
        name: { family, given: [pick(FEMALE, mix(i, 12))] },
      },
    ],
  };
}

/** A transaction Bundle that creates patients [from, to). */
export function transactionOf(from: number, to: number): string {
  const entry = [];
  for (let i = from; i < to; i++) entry.push({ fullUrl: `urn:uuid:00000000-0000-4000-8000-${pad(i, 12)}`, resource: makePatient(i), request: { method: 'POST', url: 'Patient' } });
  return JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
}
