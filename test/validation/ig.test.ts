import fs from 'node:fs';
import path from 'node:path';
import { buildIg, committedDir, committedFiles, differences } from '../../scripts/build-ig';
import { loadValidator } from '../../src/validation';
import { packageExamples, repoRoot } from '../../src/validation/packages';
import { ES_ALLERGY_INTOLERANCE, ES_AUDIT_EVENT, ES_COMMUNICATION, ES_CONSENT } from '../../src/validation/required-profiles';
import { loadConfig } from '../../src/config';
import { INVALID } from './ig-invalid';

/** Our own profiles (ig/ → profiles/espace-sante/): up to date with a fresh SUSHI build, and enforced. */
type R = Record<string, any>;
const validator = loadValidator({ cacheDir: loadConfig({}).validationCacheDir, requiredProfiles: 'fr' });
const readJson = (file: string): R => JSON.parse(fs.readFileSync(file, 'utf8'));
const examplesDir = path.join(committedDir(), 'examples');
const invalidDir = path.join(repoRoot(), 'ig', 'invalid');
const valid = fs.readdirSync(examplesDir).sort().map((f) => [f, readJson(path.join(examplesDir, f))] as const);
const errors = (r: unknown, applyRequired = true) => validator.validate(r, [], applyRequired).filter((i) => i.severity === 'error');


describe('profiles/espace-sante', () => {
  it('matches a fresh offline SUSHI build of ig/ (npm run build:ig)', () => {
    const built = buildIg();
    expect(built.log).toMatch(/0 Errors/);
    expect(differences(built.files, committedFiles())).toEqual([]);
  }, 180_000);

  it.each(['consent', 'allergyintolerance', 'communication', 'auditevent'])('espace-sante-%s is a StructureDefinition with a snapshot and a differential', (id) => {
    const sd = readJson(path.join(committedDir(), `StructureDefinition-espace-sante-${id}.json`));
    expect(sd.url).toBe(`https://espace-sante.example/fhir/StructureDefinition/espace-sante-${id}`);
    expect(sd.derivation).toBe('constraint');
    expect(sd.differential.element.length).toBeGreaterThan(0);
    expect(sd.snapshot.element[0].path).toBe(sd.type);
    // every differential element is in the snapshot
    const ids = new Set(sd.snapshot.element.map((e: R) => e.id));
    for (const e of sd.differential.element) expect(ids).toContain(e.id);
  });

  it('the AuditEvent profile derives from tde-auditevent and keeps its constraints', () => {
    const sd = readJson(path.join(committedDir(), 'StructureDefinition-espace-sante-auditevent.json'));
    expect(sd.baseDefinition).toBe('https://interop.esante.gouv.fr/ig/fhir/tde/StructureDefinition/tde-auditevent');
    const el = (id: string) => sd.snapshot.element.find((e: R) => e.id === id);
    expect(el('AuditEvent.subtype').max).toBe('1');
    expect(el('AuditEvent.period.start').min).toBe(1);
    expect(el('AuditEvent.agent').max).toBe('2');
    expect(el('AuditEvent.entity:patient.what').type[0].targetProfile).toEqual(['https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient']);
  });

  it('references point at the French base profiles', () => {
    const sd = readJson(path.join(committedDir(), 'StructureDefinition-espace-sante-consent.json'));
    const el = (id: string) => sd.snapshot.element.find((e: R) => e.id === id);
    expect(el('Consent.patient').type[0].targetProfile).toEqual(['https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient']);
    expect(el('Consent.provision.actor.reference').type[0].targetProfile).toEqual(
      expect.arrayContaining(['https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-practitioner', 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-practitioner-role', 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-organization']),
    );
  });
});

describe('the required-profile table names our profiles', () => {
  it.each([
    ['Consent', ES_CONSENT],
    ['AllergyIntolerance', ES_ALLERGY_INTOLERANCE],
    ['Communication', ES_COMMUNICATION],
    ['AuditEvent', ES_AUDIT_EVENT],
  ])('%s → %s', (type, url) => {
    expect(validator.required.for({ resourceType: type })).toEqual([url]);
    expect(validator.engine.structureDefinition(url)?.package).toBe('espace-sante');
  });
});

describe('our AuditEvent profile and the French traceability (ans.fhir.fr.tde)', () => {
  /** every AuditEvent of the TDE package's examples, also those inside its Bundles */
  const tdeAuditEvents: [string, R][] = packageExamples()
    .filter((e) => e.package.startsWith('ans.fhir.fr.tde#'))
    .flatMap((e): [string, R][] => (e.resource.resourceType === 'Bundle' ? ((e.resource.entry as R[] | undefined) ?? []).map((x, i): [string, R] => [`${e.file} entry ${i}`, x.resource]) : [[e.file, e.resource]]))
    .filter(([, r]) => r?.resourceType === 'AuditEvent');

  it('TDE has 4 example AuditEvents (2 alone, 2 in a search Bundle)', () => {
    expect(tdeAuditEvents).toHaveLength(4);
  });

  it.each(tdeAuditEvents)('TDE example %s is valid against espace-sante-auditevent', (_name, r) => {
    expect(validator.validate(r, [ES_AUDIT_EVENT], false).filter((i) => i.severity === 'error')).toEqual([]);
  });
});

describe('examples of our profiles', () => {
  it('one valid example per profile at least, and every invalid example is listed', () => {
    const types = new Set(valid.map(([, r]) => r.resourceType));
    expect([...types].sort()).toEqual(['AllergyIntolerance', 'AuditEvent', 'Communication', 'Consent']);
    expect(fs.readdirSync(invalidDir).filter((f) => f.endsWith('.json')).sort()).toEqual(Object.keys(INVALID).sort());
  });

  it.each(valid)('%s validates with no error nor warning (declared profile, and the required one without meta)', (_f, r) => {
    expect(validator.validate(r, [], false)).toEqual([]);
    const bare = structuredClone(r);
    delete bare.meta;
    expect(validator.validate(bare)).toEqual([]);
  });

  it.each(Object.entries(INVALID))('ig/invalid/%s is rejected at the right element', (file, { expression }) => {
    const r = readJson(path.join(invalidDir, file));
    expect(errors(r, false).map((i) => i.expression?.[0])).toEqual([expression]);
    // through the required-profile table too, without meta.profile
    delete r.meta;
    expect(errors(r).map((i) => i.expression?.[0])).toEqual([expression]);
  });
});

describe('what the profiles check, variant by variant', () => {
  const example = (id: string): R => {
    const [, r] = valid.find(([f]) => f.endsWith(`-${id}.json`))!;
    const c = structuredClone(r);
    delete c.meta;
    return c;
  };
  const exprs = (r: R) => errors(r).map((i) => i.expression?.[0]);

  it('Consent: an app authorization names a Device and an action (es-consent-2)', () => {
    const noAction = example('consent-app-sync');
    delete noAction.provision.action;
    expect(errors(noAction).map((i) => i.diagnostics)).toEqual([expect.stringContaining('es-consent-2')]);
    const practitioner = example('consent-app-sync');
    practitioner.provision.actor[0].reference = { reference: 'Practitioner/dr-durand' };
    expect(exprs(practitioner)).toEqual(['Consent']);
  });

  it('Consent: an organization may be blocked, also by a logical reference; a patient may not be an actor', () => {
    const org = example('consent-block-practitioner');
    org.provision.actor[0].reference = { reference: 'Organization/chu-nantes' };
    expect(exprs(org)).toEqual([]);
    const logical = example('consent-block-practitioner');
    logical.provision.actor[0].reference = { type: 'Practitioner', identifier: { system: 'urn:oid:1.2.250.1.71.4.2.1', value: '810002909371' } };
    expect(exprs(logical)).toEqual([]);
    const patient = example('consent-block-practitioner');
    patient.provision.actor[0].reference = { reference: 'Patient/someone-else' };
    expect(exprs(patient).sort()).toEqual(['Consent', 'Consent.provision.actor[0].reference.reference']);
  });

  it('Consent: period, scope, policy and provision type are checked', () => {
    const r = example('consent-app-sync');
    r.provision.period = { start: '2026-04-10', end: '2025-04-10' };
    r.scope = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] };
    r.policy = [{ uri: 'https://example.org/other-policy' }];
    r.provision.type = 'maybe';
    expect(exprs(r).sort()).toEqual(['Consent.policy[0].uri', 'Consent.provision.period', 'Consent.provision.type', 'Consent.scope']);
  });

  it('AllergyIntolerance: the patient is a Patient, reactions have manifestations, onset has an allowed type', () => {
    const r = example('allergy-penicillin');
    r.patient = { reference: 'Group/family' };
    delete r.reaction[0].manifestation;
    delete r.onsetDateTime;
    r.onsetBoolean = true;
    expect(exprs(r).sort()).toEqual(['AllergyIntolerance.onset.ofType(boolean)', 'AllergyIntolerance.patient.reference', 'AllergyIntolerance.reaction[0].manifestation']);
  });

  it('Communication: a message has a sender, recipients and content (es-comm-1); a notification goes to the person (es-comm-2)', () => {
    const msg = example('communication-message');
    delete msg.sender;
    expect(errors(msg).map((i) => i.diagnostics)).toEqual([expect.stringContaining('es-comm-1')]);
    const note = example('communication-notification');
    note.recipient = [{ reference: 'Practitioner/dr-durand' }];
    expect(errors(note).map((i) => i.diagnostics)).toEqual([expect.stringContaining('es-comm-2')]);
    const noSubject = example('communication-message');
    delete noSubject.subject;
    expect(exprs(noSubject)).toEqual(['Communication.subject']);
  });

  it('AuditEvent: the traceability profile still applies (one subtype, period.start, at most 2 agents)', () => {
    const r = example('auditevent-read-document');
    r.subtype.push({ system: 'http://hl7.org/fhir/restful-interaction', code: 'vread' });
    delete r.period.start;
    r.agent.push({ who: { reference: 'Patient/jeanne-martin' }, requestor: false }, { who: { reference: 'Device/app' }, requestor: false });
    expect(exprs(r).sort()).toEqual(['AuditEvent.agent', 'AuditEvent.period.start', 'AuditEvent.subtype']);
  });
});
