import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import NodeAdapter from 'fhirclient/lib/adapters/NodeAdapter';
import type SmartClient from 'fhirclient/lib/Client';
import type { Client as KitClient, FhirResource } from 'fhir-kit-client';
import type { Appointment, Bundle, OperationOutcome, Parameters } from 'fhir/r4';
import type { fhirclient } from 'fhirclient/lib/types';
import { createLogger } from '../../src/log';
import { startServer, type RunningServer } from '../../src/server';
import { backendToken, registerBackend } from '../helpers/auth';
import { engines, testConfig, withTransactions } from '../helpers/engines';
import { loadImportEntry } from '../helpers/esm-import';
import { esAllergy, esConsent, esMessage, esNotification, frAppointment, frPatient, frPractitioner, GENERAL_PRACTICE, INS_NIR } from '../helpers/french';

/**
 * The server driven through the clients integrators use, over real HTTP: fhir-kit-client (an ES
 * module, loaded natively) and SMART's fhirclient (its Node adapter; a backend system has no
 * incoming request, so the adapter gets only a storage, and the client a state of server URL and
 * token response). A server listens on a free port for each engine, with the French profiles
 * required (REQUIRED_PROFILES=fr), and a backend system's system/*.cruds token from its token endpoint.
 */
const { Client, CapabilityTool } = loadImportEntry<typeof import('fhir-kit-client')>('fhir-kit-client');

type R = Record<string, any>;
/** a resource as fhir-kit-client's and fhirclient's signatures want it */
const resource = (r: R) => r as FhirResource & fhirclient.FHIR.Resource;
/** the error a request fails with (the test fails if it succeeds) */
async function rejection(request: Promise<unknown>): Promise<R> {
  try {
    await request;
  } catch (e) {
    return e as R;
  }
  throw new Error('the request succeeded where it should have failed');
}
const SCOPE = 'system/*.cruds';
/** 45 appointments, one a day at 09:00 in Paris from 1 September 2025: more than four pages of 10 */
const AGENDA_DAYS = 45;

describe.each(engines())('fhir-kit-client and fhirclient against a listening server [$name]', (engine) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-clients-'));
  let server: RunningServer;
  let kit: KitClient;
  let smart: SmartClient;
  let nirs = 0;
  /** a Patient INS with an INS of its own (an INS names one Patient) */
  const insPatient = (family: string, given: string[]): R =>
    frPatient({ family, given, gender: 'female', birthDate: '1980-08-01', ins: { nir: `2800875056${String(++nirs).padStart(3, '0')}`, birthPlace: { insee: '75056', city: 'Paris' } } });
  const f: { helene: string; dupre: string; agenda: string[] } = { helene: '', dupre: '', agenda: [] };

  beforeAll(async () => {
    server = await startServer(testConfig({ dataDir, port: 0, host: '127.0.0.1', baseUrl: undefined, requiredProfiles: 'fr' }), createLogger('silent'), engine.create());
    if (server.services.store.supportsTransactions !== engine.transactions) throw new Error(`the store says transactions ${server.services.store.supportsTransactions}, the engine ${engine.transactions}`);
    const backend = await registerBackend(server.services, SCOPE);
    const token = await backendToken(server.server, backend, SCOPE, server.services.auth!.endpoints.token);
    kit = new Client({ baseUrl: server.url, bearerToken: token });
    const storage = new Map<string, unknown>();
    const store = { get: async (k: string) => storage.get(k), set: async (k: string, v: unknown) => void storage.set(k, v), unset: async (k: string) => storage.delete(k) };
    smart = new NodeAdapter({ storage: store } as never).getSmartApi().client({ serverUrl: server.url, tokenResponse: { access_token: token, token_type: 'bearer', scope: SCOPE } });

    // the agenda both clients page through, stored through fhir-kit-client
    f.helene = ((await kit.create({ resourceType: 'Patient', body: resource(insPatient('Lefèvre', ['Hélène'])) })) as R).id;
    f.dupre = ((await kit.create({ resourceType: 'Practitioner', body: resource(frPractitioner({ family: 'Dupré', given: 'François', rpps: '10003456789', prefix: 'M' })) })) as R).id;
    for (let day = 0; day < AGENDA_DAYS; day++) {
      const date = new Date(Date.UTC(2025, 8, 1 + day)).toISOString().slice(0, 10);
      const body = frAppointment({ patient: `Patient/${f.helene}`, practitioner: `Practitioner/${f.dupre}`, start: `${date}T09:00:00+02:00`, end: `${date}T09:20:00+02:00`, status: 'booked', kind: GENERAL_PRACTICE, description: `Séance de kinésithérapie n° ${day + 1}`, created: '2025-08-20' });
      f.agenda.push(((await kit.create({ resourceType: 'Appointment', body: resource(body) })) as R).id);
    }
  }, 300000);

  afterAll(async () => {
    await server?.stop();
    await engine.cleanup();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** the changes of the CRUD walks: a mobile number (update), then a home address (JSON Patch) */
  const MOBILE = [{ system: 'phone', value: '06 12 34 56 78', use: 'mobile' }];
  const ADD_ADDRESS = [{ op: 'add' as const, path: '/address', value: [{ use: 'home', line: ['12 rue des Écoles'], city: 'Paris', postalCode: '75005', country: 'France' }] }];
  const expectPatched = (patched: R) => {
    expect(patched.meta.versionId).toBe('3');
    expect(patched.address).toEqual(ADD_ADDRESS[0].value);
    expect(patched.telecom).toEqual(MOBILE);
  };
  /** the statuses of a batch or transaction response, in entry order */
  const statuses = (b: R) => (b.entry as R[]).map((e) => e.response.status as string);
  const appointmentSearch = () => `Appointment?patient=Patient/${f.helene}&_count=10&_sort=date`;
  /** a transaction: a new Patient INS and, by urn:uuid, her allergy, access decision and a notification */
  const newSpaceTransaction = (family: string) => {
    const p = 'urn:uuid:9d0c1f7e-5b7a-4c1e-9a51-2f3c6d7e8f01';
    return {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:9d0c1f7e-5b7a-4c1e-9a51-2f3c6d7e8f02', request: { method: 'POST', url: 'AllergyIntolerance' }, resource: esAllergy({ patient: p, code: '764146007', display: 'Penicillin', text: 'Allergie à la pénicilline', category: 'medication', clinicalStatus: 'active', criticality: 'high', recordedDate: '2025-05-06' }) },
        { fullUrl: p, request: { method: 'POST', url: 'Patient' }, resource: insPatient(family, ['Hélène']) },
        { request: { method: 'POST', url: 'Consent' }, resource: esConsent({ patient: p, category: 'professional-access', type: 'deny', actor: `Practitioner/${f.dupre}`, dateTime: '2025-05-06T10:00:00+02:00', start: '2025-05-06' }) },
        { request: { method: 'POST', url: 'Communication' }, resource: esNotification({ patient: p, event: 'new-document', sent: '2025-05-06T10:01:00+02:00', text: 'Un nouveau document a été ajouté à votre profil.' }) },
      ],
    };
  };
  /** what a transaction made of newSpaceTransaction must have stored */
  const expectNewSpace = (response: R) => {
    expect(response.type).toBe('transaction-response');
    expect(statuses(response)).toEqual(['201 Created', '201 Created', '201 Created', '201 Created']);
    const [allergy, patient, consent, notification] = (response.entry as R[]).map((e) => e.resource);
    expect(allergy.patient.reference).toBe(`Patient/${patient.id}`);
    expect(consent.patient.reference).toBe(`Patient/${patient.id}`);
    expect(consent.performer[0].reference).toBe(`Patient/${patient.id}`);
    expect(notification.subject.reference).toBe(`Patient/${patient.id}`);
    expect(notification.recipient[0].reference).toBe(`Patient/${patient.id}`);
    return { patient: patient.id as string, allergy: allergy.id as string, consent: consent.id as string, notification: notification.id as string };
  };
  /** a Consent that names no patient: our profile wants one */
  const consentWithoutPatient = () => {
    const c = esConsent({ patient: 'Patient/x', category: 'professional-access', type: 'deny', actor: 'Practitioner/y', dateTime: '2025-03-02T10:15:00+01:00', start: '2025-03-02' });
    delete c.patient;
    return c;
  };
  const validateParameters = (r: R): Parameters => ({ resourceType: 'Parameters', parameter: [{ name: 'resource', resource: r as never }] });
  /** an appointment whose status is not a code of AppointmentStatus */
  const badAppointment = () => ({ ...frAppointment({ patient: `Patient/${f.helene}`, practitioner: `Practitioner/${f.dupre}`, start: '2025-12-01T09:00:00+01:00', end: '2025-12-01T09:20:00+01:00', status: 'booked', kind: GENERAL_PRACTICE, description: 'Consultation', created: '2025-11-20' }), status: 'confirmée' });
  /** the OperationOutcome of badAppointment(): one error, at its status (`at`: where the Appointment is) */
  const expectBadStatus = (outcome: OperationOutcome, at = 'Appointment') => {
    expect(outcome.resourceType).toBe('OperationOutcome');
    const errors = outcome.issue.filter((i) => i.severity === 'error');
    expect(errors.map((i) => i.expression)).toEqual([[`${at}.status`]]);
    expect(errors[0].diagnostics).toContain('confirmée');
  };

  describe('fhir-kit-client', () => {
    test('the CapabilityStatement, read through CapabilityTool, offers the interactions and search parameters used here', async () => {
      const cs = (await kit.capabilityStatement()) as R;
      const tool = new CapabilityTool(resource(cs));
      expect(tool.serverCan('batch')).toBe(true);
      expect(tool.serverCan('transaction')).toBe(engine.transactions);
      const used: Record<string, string[]> = {
        Appointment: ['patient', 'actor', 'practitioner', 'date', 'status', 'service-type'],
        Consent: ['patient', 'status', 'category', 'actor', 'period', 'date'],
        Communication: ['subject', 'recipient', 'sender', 'category', 'sent', 'status'],
        AllergyIntolerance: ['patient', 'clinical-status', 'code', 'criticality'],
      };
      for (const [type, params] of Object.entries(used)) {
        expect({ type, interactions: tool.interactionsFor({ resourceType: type }) }).toEqual({ type, interactions: expect.arrayContaining(['create', 'read', 'update', 'patch', 'delete', 'search-type', 'history-instance']) });
        expect({ type, unsupported: params.filter((p) => !tool.resourceSearch(type, p)) }).toEqual({ type, unsupported: [] });
      }
    });

    test('create, read, update, JSON Patch, vread, delete; a deleted resource is Gone', async () => {
      const created = (await kit.create({ resourceType: 'Patient', body: resource(insPatient('Lefèvre', ['Hélène', 'Marie'])) })) as R;
      expect(created.meta.versionId).toBe('1');
      expect(Client.httpFor(resource(created)).response?.status).toBe(201);
      expect(Client.httpFor(resource(created)).response?.headers.get('location')).toBe(`${server.url}/Patient/${created.id}/_history/1`);
      const read = (await kit.read({ resourceType: 'Patient', id: created.id })) as R;
      expect(read).toEqual(created);
      expect(read.name[0]).toEqual(expect.objectContaining({ family: 'Lefèvre', given: ['Hélène'] }));

      const updated = (await kit.update({ resourceType: 'Patient', id: created.id, body: resource({ ...read, telecom: MOBILE }) })) as R;
      expect(updated.meta.versionId).toBe('2');
      expect(updated.telecom).toEqual(MOBILE);
      expectPatched((await kit.patch({ resourceType: 'Patient', id: created.id, jsonPatch: ADD_ADDRESS, options: { headers: { Prefer: 'return=representation' } } })) as R);

      const v1 = (await kit.vread({ resourceType: 'Patient', id: created.id, version: '1' })) as R;
      expect(v1).toEqual(created);

      await kit.delete({ resourceType: 'Patient', id: created.id });
      await expect(kit.read({ resourceType: 'Patient', id: created.id })).rejects.toMatchObject({ response: { status: 410 } });
      await expect(kit.read({ resourceType: 'Patient', id: 'personne' })).rejects.toMatchObject({ response: { status: 404, data: { resourceType: 'OperationOutcome' } } });
    });

    test('conditional create: If-None-Exist finds the Patient by her INS instead of making a second one', async () => {
      const patient = insPatient('Lefèvre', ['Hélène']);
      const nir = patient.identifier[0].value as string;
      const ifNoneExist = { headers: { 'If-None-Exist': `identifier=${INS_NIR}|${nir}` } };
      const first = (await kit.create({ resourceType: 'Patient', body: resource(patient), options: ifNoneExist })) as R;
      expect(Client.httpFor(resource(first)).response?.status).toBe(201);
      const second = (await kit.create({ resourceType: 'Patient', body: resource(patient), options: ifNoneExist })) as R;
      expect(Client.httpFor(resource(second)).response?.status).toBe(200);
      expect(second.id).toBe(first.id);
      expect(second.meta.versionId).toBe('1');
      const found = (await kit.search({ resourceType: 'Patient', searchParams: { identifier: `${INS_NIR}|${nir}`, _total: 'accurate' } })) as R;
      expect(found.total).toBe(1);
      expect(found.entry.map((e: R) => e.resource.id)).toEqual([first.id]);
    });

    test(`search: nextPage walks the ${AGENDA_DAYS} appointments 10 by 10, each once, in date order`, async () => {
      const seen: string[] = [];
      const sizes: number[] = [];
      let page: R | undefined = (await kit.request(`${appointmentSearch()}&_total=accurate`)) as R;
      while (page) {
        expect(page.total).toBe(AGENDA_DAYS);
        sizes.push(page.entry.length);
        seen.push(...page.entry.map((e: R) => e.resource.id));
        page = (await kit.nextPage({ bundle: page as never })) as R | undefined;
      }
      expect(sizes).toEqual([10, 10, 10, 10, 5]);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual(f.agenda);
      // without _sort: every one once, in the server's order
      const unsorted: string[] = [];
      page = (await kit.search({ resourceType: 'Appointment', searchParams: { actor: `Practitioner/${f.dupre}`, _count: 10 } })) as R;
      while (page) {
        unsorted.push(...page.entry.map((e: R) => e.resource.id));
        page = (await kit.nextPage({ bundle: page as never })) as R | undefined;
      }
      expect(unsorted.length).toBe(AGENDA_DAYS);
      expect([...unsorted].sort()).toEqual([...f.agenda].sort());
    });

    test('searches follow the changes: a rescheduled appointment, a revoked authorization, a deleted message', async () => {
      const ids = async (resourceType: string, searchParams: Record<string, string>) => (((await kit.search({ resourceType, searchParams })) as R).entry ?? []).map((e: R) => e.resource.id as string);
      const loic = ((await kit.create({ resourceType: 'Patient', body: resource(frPatient({ family: 'Bénard', given: ['Loïc'], gender: 'male', birthDate: '1975-03-14' })) })) as R).id;
      // rescheduled from 2 to 9 December, and with another practitioner
      const crepin = ((await kit.create({ resourceType: 'Practitioner', body: resource(frPractitioner({ family: 'Crépin', given: 'Anaïs', rpps: '10004567899', prefix: 'MME' })) })) as R).id;
      const appointment = (await kit.create({ resourceType: 'Appointment', body: resource(frAppointment({ patient: `Patient/${loic}`, practitioner: `Practitioner/${f.dupre}`, start: '2025-12-02T10:00:00+01:00', end: '2025-12-02T10:20:00+01:00', status: 'booked', kind: GENERAL_PRACTICE, description: 'Consultation', created: '2025-11-25' })) })) as R;
      const moved = frAppointment({ patient: `Patient/${loic}`, practitioner: `Practitioner/${crepin}`, start: '2025-12-09T11:00:00+01:00', end: '2025-12-09T11:20:00+01:00', status: 'booked', kind: GENERAL_PRACTICE, description: 'Consultation (reportée)', created: '2025-11-25' });
      await kit.update({ resourceType: 'Appointment', id: appointment.id, body: resource({ ...moved, id: appointment.id }) });
      expect(await ids('Appointment', { patient: loic, date: '2025-12-02' })).toEqual([]);
      expect(await ids('Appointment', { patient: loic, date: '2025-12-09' })).toEqual([appointment.id]);
      expect(await ids('Appointment', { patient: loic, practitioner: f.dupre })).toEqual([]);
      expect(await ids('Appointment', { patient: loic, 'practitioner.name': 'crepin' })).toEqual([appointment.id]);
      // the person revokes a catalogue app's authorization
      const app = ((await kit.create({ resourceType: 'Device', body: resource({ resourceType: 'Device', status: 'active', deviceName: [{ name: 'GlucoSuivi', type: 'user-friendly-name' }] }) })) as R).id;
      const consent = (await kit.create({ resourceType: 'Consent', body: resource(esConsent({ patient: `Patient/${loic}`, category: 'app-data-sync', type: 'permit', actor: `Device/${app}`, dateTime: '2025-04-10T08:00:00+02:00', start: '2025-04-10', end: '2026-04-10' })) })) as R;
      expect(await ids('Consent', { patient: loic, status: 'active', actor: `Device/${app}` })).toEqual([consent.id]);
      await kit.patch({ resourceType: 'Consent', id: consent.id, jsonPatch: [{ op: 'replace', path: '/status', value: 'inactive' }, { op: 'replace', path: '/provision/period/end', value: '2025-12-01' }] });
      expect(await ids('Consent', { patient: loic, status: 'active' })).toEqual([]);
      expect(await ids('Consent', { patient: loic, status: 'inactive', period: 'ge2025-12-01' })).toEqual([consent.id]);
      expect(await ids('Consent', { patient: loic, period: 'gt2026-01-01' })).toEqual([]);
      // a message deleted: out of searches, includes and reverse includes; its history stays
      const message = (await kit.create({ resourceType: 'Communication', body: resource(esMessage({ subject: `Patient/${loic}`, sender: `Patient/${loic}`, recipient: `Practitioner/${crepin}`, sent: '2025-12-03T08:00:00+01:00', text: 'Bonjour docteur, je ne pourrai pas venir le 2.' })) })) as R;
      expect(await ids('Communication', { recipient: `Practitioner/${crepin}` })).toEqual([message.id]);
      await kit.delete({ resourceType: 'Communication', id: message.id });
      expect(await ids('Communication', { recipient: `Practitioner/${crepin}` })).toEqual([]);
      const withMessages = (await kit.search({ resourceType: 'Practitioner', searchParams: { _id: crepin, _revinclude: 'Communication:recipient' } })) as R;
      expect(withMessages.entry.map((e: R) => e.resource.id)).toEqual([crepin]);
      expect(((await kit.history({ resourceType: 'Communication', id: message.id })) as R).total).toBe(2);
    });

    test('history of a resource (newest first) and of its type', async () => {
      const created = (await kit.create({ resourceType: 'Practitioner', body: resource(frPractitioner({ family: 'Crépin', given: 'Anaïs', rpps: '10004567890', prefix: 'MME' })) })) as R;
      await kit.update({ resourceType: 'Practitioner', id: created.id, body: resource({ ...created, active: false }) });
      await kit.delete({ resourceType: 'Practitioner', id: created.id });
      const history = (await kit.history({ resourceType: 'Practitioner', id: created.id })) as R;
      expect(history.type).toBe('history');
      expect(history.total).toBe(3);
      expect(history.entry.map((e: R) => [e.request.method, e.response.status, e.resource?.meta.versionId ?? null])).toEqual([
        ['DELETE', '204 No Content', null],
        ['PUT', '200 OK', '2'],
        ['POST', '201 Created', '1'],
      ]);
      expect(history.entry[1].resource.active).toBe(false);
      const typeHistory = (await kit.typeHistory({ resourceType: 'Practitioner' })) as R;
      expect(typeHistory.entry.filter((e: R) => e.fullUrl === `${server.url}/Practitioner/${created.id}`)).toHaveLength(3);
    });

    test('batch: every entry answered on its own, a refused one with its OperationOutcome', async () => {
      const response = (await kit.batch({
        body: {
          resourceType: 'Bundle',
          type: 'batch',
          entry: [
            { request: { method: 'POST', url: 'Communication' }, resource: esMessage({ subject: `Patient/${f.helene}`, sender: `Practitioner/${f.dupre}`, recipient: `Patient/${f.helene}`, sent: '2025-09-02T18:00:00+02:00', text: 'Bonjour Madame Lefèvre, pensez à apporter votre ordonnance.' }) },
            { request: { method: 'GET', url: `Patient/${f.helene}` } },
            { request: { method: 'GET', url: `Appointment?patient=${f.helene}&date=2025-09-02` } },
            { request: { method: 'POST', url: 'Appointment' }, resource: badAppointment() },
            { request: { method: 'GET', url: 'Patient/personne' } },
          ],
        },
      })) as R;
      expect(response.type).toBe('batch-response');
      expect(statuses(response)).toEqual(['201 Created', '200 OK', '200 OK', '422 Unprocessable Entity', '404 Not Found']);
      expect(response.entry[0].response.location).toMatch(new RegExp(`^${server.url}/Communication/[^/]+/_history/1$`));
      expect(response.entry[1].resource.id).toBe(f.helene);
      expect(response.entry[2].resource.entry.map((e: R) => e.resource.id)).toEqual([f.agenda[1]]);
      expectBadStatus(response.entry[3].response.outcome, 'Bundle.entry[3].resource');
    });

    withTransactions(engine)('transaction: urn:uuid references become the new ids', async () => {
      const made = expectNewSpace((await kit.transaction({ body: newSpaceTransaction('Kit') })) as R);
      const allergies = (await kit.search({ resourceType: 'AllergyIntolerance', searchParams: { patient: made.patient } })) as R;
      expect(allergies.entry.map((e: R) => e.resource.id)).toEqual([made.allergy]);
    });

    if (!engine.transactions) {
      test('transaction: where the store cannot make it atomic, the client gets the 501 OperationOutcome and nothing is stored', async () => {
        const error = await rejection(kit.transaction({ body: newSpaceTransaction('KitRefused') }));
        expect(error.response.status).toBe(501);
        expect(error.response.data.issue[0].code).toBe('not-supported');
        const none = (await kit.search({ resourceType: 'Patient', searchParams: { family: 'KitRefused', _total: 'accurate' } })) as R;
        expect(none.total).toBe(0);
      });
    }

    test('$validate with a Parameters resource: an OperationOutcome, and nothing stored', async () => {
      const bad = (await kit.operation({ name: '$validate', resourceType: 'Consent', input: resource(validateParameters(consentWithoutPatient())) })) as R;
      expect(bad.resourceType).toBe('OperationOutcome');
      expect(bad.issue.filter((i: R) => i.severity === 'error').map((i: R) => i.expression)).toEqual([['Consent.patient']]);
      const good = (await kit.operation({ name: '$validate', resourceType: 'Consent', input: resource(validateParameters(esConsent({ patient: `Patient/${f.helene}`, category: 'professional-access', type: 'deny', actor: `Practitioner/${f.dupre}`, dateTime: '2025-03-02T10:15:00+01:00', start: '2025-03-02' }))) })) as R;
      expect(good.issue).toEqual([expect.objectContaining({ severity: 'information' })]);
      const consents = (await kit.search({ resourceType: 'Consent', searchParams: { patient: f.helene, _total: 'accurate' } })) as R;
      expect(consents.total).toBe(0);
    });

    test('a 422 is the thrown error: its status and the OperationOutcome with the expression of the fault', async () => {
      const error = await rejection(kit.create({ resourceType: 'Appointment', body: resource(badAppointment()) }));
      expect(error.message).toContain('HTTP 422');
      expect(error.response.status).toBe(422);
      expectBadStatus(error.response.data);
    });
  });

  describe('fhirclient', () => {
    /** a POST of FHIR JSON through fhirclient's request: '' is the base (batch, transaction) */
    const post = (url: string, body: unknown) => smart.request<R>({ url, method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/fhir+json' } });

    test('create, read, update, JSON Patch, vread, delete; a deleted resource is Gone', async () => {
      const { body, response } = await smart.create<R, { includeResponse: true }>(resource(insPatient('Lefèvre', ['Hélène', 'Marie'])), { includeResponse: true });
      expect(response.status).toBe(201);
      const created = body!;
      expect(created.meta.versionId).toBe('1');
      const read = await smart.request<R>(`Patient/${created.id}`);
      expect(read).toEqual(created);
      const updated = await smart.update<R>(resource({ ...read, telecom: MOBILE }));
      expect(updated.meta.versionId).toBe('2');
      expect(updated.telecom).toEqual(MOBILE);
      expectPatched(await smart.patch<R>(`Patient/${created.id}`, ADD_ADDRESS));
      expect(await smart.request(`Patient/${created.id}/_history/1`)).toEqual(created);
      await smart.delete(`Patient/${created.id}`);
      await expect(smart.request(`Patient/${created.id}`)).rejects.toMatchObject({ status: 410 });
    });

    test('conditional create: If-None-Exist finds the Patient by her INS instead of making a second one', async () => {
      const patient = insPatient('Lefèvre', ['Hélène']);
      const nir = patient.identifier[0].value as string;
      const options = { includeResponse: true as const, headers: { 'If-None-Exist': `identifier=${INS_NIR}|${nir}` } };
      const first = await smart.create<R, typeof options>(resource(patient), options);
      expect(first.response.status).toBe(201);
      const second = await smart.create<R, typeof options>(resource(patient), options);
      expect(second.response.status).toBe(200);
      expect(second.body!.id).toBe(first.body!.id);
      const all = await smart.request<R[]>(`Patient?identifier=${INS_NIR}|${nir}`, { pageLimit: 0, flat: true });
      expect(all.map((p) => p.id)).toEqual([first.body!.id]);
    });

    test(`search: pageLimit 0 and pages() follow next links through the ${AGENDA_DAYS} appointments, each once`, async () => {
      const sizes: number[] = [];
      const totals: (number | undefined)[] = [];
      const flat = await smart.request<Appointment[]>(`${appointmentSearch()}&_total=accurate`, { pageLimit: 0, flat: true });
      expect(flat.map((a) => a.id)).toEqual(f.agenda);
      await smart.request(`${appointmentSearch()}&_total=accurate`, {
        pageLimit: 0,
        onPage: (page) => {
          const b = page as unknown as Bundle;
          sizes.push(b.entry?.length ?? 0);
          totals.push(b.total);
        },
      });
      expect(sizes).toEqual([10, 10, 10, 10, 5]);
      expect(totals).toEqual([AGENDA_DAYS, AGENDA_DAYS, AGENDA_DAYS, AGENDA_DAYS, AGENDA_DAYS]);
      // latest first, through the async page generator
      const latestFirst: string[] = [];
      for await (const page of smart.pages(`Appointment?patient=${f.helene}&_count=10&_sort=-date`)) latestFirst.push(...(page.entry ?? []).map((e) => e.resource!.id!));
      expect(latestFirst).toEqual([...f.agenda].reverse());
    });

    test('history of a resource (newest first)', async () => {
      const created = await smart.create<R>(resource(frPractitioner({ family: 'Müller', given: 'Noël', rpps: '10005678901', prefix: 'M' })));
      await smart.update(resource({ ...created, active: false }));
      await smart.delete(`Practitioner/${created.id}`);
      const history = await smart.request<R>(`Practitioner/${created.id}/_history`);
      expect(history.entry.map((e: R) => [e.request.method, e.resource?.meta.versionId ?? null])).toEqual([
        ['DELETE', null],
        ['PUT', '2'],
        ['POST', '1'],
      ]);
    });

    test('batch: every entry answered on its own', async () => {
      const body: Bundle = {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'POST', url: 'AllergyIntolerance' }, resource: esAllergy({ patient: `Patient/${f.helene}`, code: '227493005', display: 'Cashew nut', text: 'Noix de cajou', category: 'food', clinicalStatus: 'active', criticality: 'high', recordedDate: '2025-02-03' }) as never },
          { request: { method: 'GET', url: `AllergyIntolerance?patient=${f.helene}&code=227493005` } },
          { request: { method: 'POST', url: 'Appointment' }, resource: badAppointment() as never },
        ],
      };
      const response = await post('', body);
      expect(response.type).toBe('batch-response');
      expect(statuses(response)).toEqual(['201 Created', '200 OK', '422 Unprocessable Entity']);
      expectBadStatus(response.entry[2].response.outcome, 'Bundle.entry[2].resource');
    });

    withTransactions(engine)('transaction: urn:uuid references become the new ids', async () => {
      const made = expectNewSpace(await post('', newSpaceTransaction('Smart')));
      const notifications = await smart.request<R[]>(`Communication?subject=Patient/${made.patient}`, { pageLimit: 0, flat: true });
      expect(notifications.map((c) => c.id)).toEqual([made.notification]);
    });

    test('$validate with a Parameters resource', async () => {
      const outcome = (await post('Consent/$validate', validateParameters(consentWithoutPatient()))) as OperationOutcome;
      expect(outcome.issue.filter((i) => i.severity === 'error').map((i) => i.expression)).toEqual([['Consent.patient']]);
    });

    test('a 422 is the thrown error: its status, and the OperationOutcome in its message', async () => {
      const error = await rejection(smart.create(resource(badAppointment())));
      expect(error.name).toBe('HttpError');
      expect(error.status).toBe(422);
      // fhirclient reads the body into the message, after a blank line
      const message = error.message as string;
      expectBadStatus(JSON.parse(message.slice(message.indexOf('\n\n') + 2)));
    });
  });
});
