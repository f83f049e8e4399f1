import type { Sd } from './definitions';

/**
 * THE table of profiles the server requires per resource type (issue 4, item 4). One place:
 * change it here. Selected by the REQUIRED_PROFILES setting: `fr` (default) or `none`.
 * Profiles in a resource's meta.profile always apply in addition.
 */

export const FR_CORE = 'https://hl7.fr/ig/fhir/core/StructureDefinition/';
export const FR_CORE_PATIENT = `${FR_CORE}fr-core-patient`;
export const FR_CORE_PATIENT_INS = `${FR_CORE}fr-core-patient-ins`;
const PDSM = 'https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/';
export const PDSM_DOCUMENT_REFERENCE = `${PDSM}pdsm-comprehensive-document-reference`;
/** The PDSm DocumentReference profiles a document may declare; the comprehensive one is required when it declares none. */
export const PDSM_SIMPLIFIED_PUBLISH = `${PDSM}pdsm-simplified-publish`;
export const PDSM_DOCUMENT_REFERENCES = [PDSM_DOCUMENT_REFERENCE, PDSM_SIMPLIFIED_PUBLISH];
export const TDE_AUDIT_EVENT = 'https://interop.esante.gouv.fr/ig/fhir/tde/StructureDefinition/tde-auditevent';
/** Our own profiles (ig/, compiled into profiles/espace-sante/), where France publishes none. */
export const ESPACE_SANTE = 'https://espace-sante.example/fhir/StructureDefinition/';
export const ES_AUDIT_EVENT = `${ESPACE_SANTE}espace-sante-auditevent`;
export const ES_CONSENT = `${ESPACE_SANTE}espace-sante-consent`;
export const ES_ALLERGY_INTOLERANCE = `${ESPACE_SANTE}espace-sante-allergyintolerance`;
export const ES_COMMUNICATION = `${ESPACE_SANTE}espace-sante-communication`;
/** Packages whose Observation profiles are chosen by LOINC code, in order of preference. */
const OBSERVATION_PACKAGES = ['ans.fhir.fr.mesures', 'hl7.fhir.fr.core'];

/** LOINC, under its own URI and as the French NOS publishes it (TRE_A04). */
const LOINC_SYSTEMS = ['http://loinc.org', 'https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc'];

/** INS identifier systems: INS-NIR, INS-NIA, test INS-NIR, demo INS-NIR. */
export const INS_SYSTEMS = new Set(['urn:oid:1.2.250.1.213.1.4.8', 'urn:oid:1.2.250.1.213.1.4.9', 'urn:oid:1.2.250.1.213.1.4.10', 'urn:oid:1.2.250.1.213.1.4.11']);

export type RequiredProfilesMode = 'fr' | 'none';

type Res = Record<string, unknown>;

/** What the server requires of one resource type. */
interface Requirement {
  /** every profile a write of the type may have to meet (the CapabilityStatement's supportedProfile) */
  all: string[];
  /** the profiles required of this resource, besides its meta.profile */
  of: (r: Res) => string[];
}

const hasIns = (r: Res) => Array.isArray(r.identifier) && r.identifier.some((i) => typeof i === 'object' && i !== null && INS_SYSTEMS.has((i as { system?: string }).system ?? ''));
const declared = (r: Res): string[] => {
  const p = (r.meta as { profile?: unknown } | undefined)?.profile;
  return Array.isArray(p) ? p.filter((x): x is string => typeof x === 'string').map((x) => x.split('|')[0]) : [];
};
const always = (url: string): Requirement => ({ all: [url], of: () => [url] });
/** One of several profiles: the ones the resource declares among them apply (through meta.profile), else the first. */
const oneOf = (urls: string[]): Requirement => ({ all: urls, of: (r) => (declared(r).some((p) => urls.includes(p)) ? [] : [urls[0]]) });

/** The French defaults, by resource type. Observation is resolved by code (see observationProfiles). */
export const FRENCH_REQUIRED: Record<string, Requirement> = {
  // FR Core Patient INS derives from FR Core Patient: requiring it covers both
  Patient: { all: [FR_CORE_PATIENT, FR_CORE_PATIENT_INS], of: (r) => [hasIns(r) ? FR_CORE_PATIENT_INS : FR_CORE_PATIENT] },
  Practitioner: always(`${FR_CORE}fr-core-practitioner`),
  PractitionerRole: always(`${FR_CORE}fr-core-practitioner-role`),
  Organization: always(`${FR_CORE}fr-core-organization`),
  RelatedPerson: always(`${FR_CORE}fr-core-related-person`),
  Appointment: always(`${FR_CORE}fr-core-appointment`),
  DocumentReference: oneOf(PDSM_DOCUMENT_REFERENCES),
  // ours derives from the traceability tde-auditevent: requiring it covers both
  AuditEvent: always(ES_AUDIT_EVENT),
  Consent: always(ES_CONSENT),
  AllergyIntolerance: always(ES_ALLERGY_INTOLERANCE),
  Communication: always(ES_COMMUNICATION),
};

/**
 * LOINC code → Observation profile, from the Mesures de santé then FR Core Observation profiles: the
 * codes a profile fixes itself (fixed or pattern values of Observation.code), else the codes of a
 * binding of Observation.code that the profile sets itself. A binding inherited from the base (the
 * vital-signs profile binds every vital sign) says nothing about which measurement a profile is for.
 */
export function observationProfiles(sds: Sd[], expand: (valueSet: string) => { system: string; code: string }[]): Map<string, string> {
  const byUrl = new Map(sds.map((s) => [s.url, s]));
  const byCode = new Map<string, string>();
  for (const pkg of OBSERVATION_PACKAGES) {
    for (const sd of sds.filter((s) => s.type === 'Observation' && s.derivation === 'constraint' && s.package.startsWith(pkg + '#'))) {
      let codes = fixedCodes(sd);
      if (codes.length === 0) {
        const own = codeBinding(sd);
        const inherited = sd.baseDefinition ? codeBinding(byUrl.get(sd.baseDefinition.split('|')[0])) : undefined;
        if (own && own !== inherited) codes = expand(own).map((c) => `${c.system}|${c.code}`);
      }
      for (const c of codes) if (LOINC_SYSTEMS.some((sys) => c.startsWith(sys + '|')) && !byCode.has(c)) byCode.set(c, sd.url);
    }
  }
  return byCode;
}

/** The `system|code` pairs a profile fixes (fixed or pattern) on Observation.code, its codings or their code. */
function fixedCodes(sd: Sd): string[] {
  const codes: string[] = [];
  const systemOf = new Map<string, string>();
  for (const e of sd.elements) {
    if (!e.path.startsWith('Observation.code')) continue;
    const v = (e.fixed ?? e.pattern)?.value;
    if (e.path === 'Observation.code.coding.system' && typeof v === 'string') systemOf.set(e.id.slice(0, e.id.lastIndexOf('.')), v);
    if (e.path === 'Observation.code.coding.code' && typeof v === 'string') codes.push(`${systemOf.get(e.id.slice(0, e.id.lastIndexOf('.'))) ?? 'http://loinc.org'}|${v}`);
    if (e.path === 'Observation.code.coding' && v && typeof v === 'object') {
      const c = v as { system?: string; code?: string };
      if (c.code) codes.push(`${c.system}|${c.code}`);
    }
    if (e.path === 'Observation.code' && v && typeof v === 'object') for (const c of (v as { coding?: { system?: string; code?: string }[] }).coding ?? []) if (c.code) codes.push(`${c.system}|${c.code}`);
  }
  return codes;
}

/** The value set a required or extensible binding of Observation.code names in this profile. */
function codeBinding(sd: Sd | undefined): string | undefined {
  const b = sd?.elements.find((e) => e.id === 'Observation.code')?.binding;
  return b && (b.strength === 'required' || b.strength === 'extensible') ? b.valueSet?.split('|')[0] : undefined;
}

export class RequiredProfiles {
  constructor(
    readonly mode: RequiredProfilesMode,
    private readonly observationByCode: Map<string, string>,
  ) {}

  /** The profiles the server requires for this resource (besides its meta.profile). */
  for(resource: Res): string[] {
    if (this.mode === 'none') return [];
    const type = resource.resourceType as string;
    if (type === 'Observation') {
      const coding = (resource.code as { coding?: { system?: string; code?: string }[] } | undefined)?.coding;
      if (Array.isArray(coding)) for (const c of coding) {
        const p = c && this.observationByCode.get(`${c.system}|${c.code}`);
        if (p) return [p];
      }
      return [];
    }
    return FRENCH_REQUIRED[type]?.of(resource) ?? [];
  }

  /** The table as data, for documentation and the CapabilityStatement. */
  describe(): Record<string, string[]> {
    if (this.mode === 'none') return {};
    const out: Record<string, string[]> = {};
    for (const [type, requirement] of Object.entries(FRENCH_REQUIRED)) out[type] = requirement.all;
    out.Observation = [...new Set(this.observationByCode.values())];
    return out;
  }
}
