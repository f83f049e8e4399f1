import { BASE, eachEngine, ids, request } from '../helpers/http';
import {
  ALLERGY_CLINICAL,
  CARDIOLOGY,
  COMMUNICATION_CATEGORY,
  CONSENT_CATEGORY,
  DERMATOLOGY,
  esAllergy,
  esConsent,
  esMessage,
  esNotification,
  frAppointment,
  frPatient,
  frPractitioner,
  GENERAL_PRACTICE,
  INS_NIR,
  insNir,
  SERVICE_TYPE,
  SNOMED,
  SPECIALTY,
} from '../helpers/french';

/**
 * The searches a personal health space makes on the types it is about (its agenda, the person's
 * access decisions, secure messages and notifications, allergies), over HTTP, on French data that
 * the French profiles accept (REQUIRED_PROFILES=fr). Every search asks for _total=accurate; results
 * are named after the fixtures below, so a failure reads "ap1" rather than an id.
 */
type Bundle = { total?: number; entry?: { resource: { resourceType: string; id: string }; search: { mode: string } }[]; link?: { relation: string; url: string }[] };

eachEngine(
  'searches of the agenda, access decisions, messages and allergies, on French data',
  (h) => {
    const f: Record<string, { id: string }> = {};
    const nameOf = new Map<string, string>();
    const names = (list: string[]) => list.map((id) => nameOf.get(id) ?? `unknown:${id}`);
    const get = async (q: string): Promise<Bundle> => {
      // characters outside ASCII percent-encoded, as a client sends them
      const res = await request(h.app).get(`/fhir/${q.replace(/[^\x20-\x7e]/gu, (c) => encodeURIComponent(c))}`);
      if (res.status !== 200) throw new Error(`${q}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const withTotal = (q: string) => `${q}${q.includes('?') ? '&' : '?'}_total=accurate`;
    /** the matches, by fixture name, sorted; the total says the same number */
    const found = async (q: string) => {
      const b = await get(withTotal(q));
      const matches = names(ids(b));
      expect({ q, total: b.total }).toEqual({ q, total: matches.length });
      return matches.sort();
    };
    /** the matches in the server's order, every page followed; each page says the same total */
    const inOrder = async (q: string, total?: number) => {
      const out: string[] = [];
      let b = await get(withTotal(q));
      for (;;) {
        out.push(...names(ids(b)));
        if (total !== undefined) expect({ q, total: b.total }).toEqual({ q, total });
        const next = b.link?.find((l) => l.relation === 'next');
        if (!next) break;
        expect(next.url.startsWith(`${BASE}/`)).toBe(true);
        b = await get(next.url.slice(BASE.length + 1));
      }
      return out;
    };
    /** the resources a search included (not its matches), by fixture name, sorted */
    const included = (b: Bundle) => names((b.entry ?? []).filter((e) => e.search.mode === 'include').map((e) => e.resource.id)).sort();
    const add = async (name: string, resource: Record<string, unknown>) => {
      f[name] = await h.create(resource);
      nameOf.set(f[name].id, name);
      return `${resource.resourceType}/${f[name].id}`;
    };

    beforeAll(async () => {
      const helene = await add('helene', frPatient({ family: 'Lefèvre', given: ['Hélène', 'Marie'], gender: 'female', birthDate: '1980-08-01', city: 'Paris', ins: { nir: '2800875056123', birthPlace: { insee: '75056', city: 'Paris' } } }));
      const loic = await add('loic', frPatient({ family: 'Bénard', given: ['Loïc'], gender: 'male', birthDate: '1975-03-14', city: 'Lyon' }));
      const heleneG = await add('heleneG', frPatient({ family: 'Girard', given: ['Hélène'], gender: 'female', birthDate: '1992-11-23', city: 'Marseille', ins: { nir: '2921113055045', birthPlace: { insee: '13055', city: 'Marseille' } } }));
      const laetitia = await add('laetitia', frPatient({ family: 'Cœur', given: ['Lætitia'], gender: 'female', birthDate: '2001-02-17', city: 'Nantes' }));
      const dupre = await add('dupre', frPractitioner({ family: 'Dupré', given: 'François', rpps: '10003456789', prefix: 'M' }));
      const crepin = await add('crepin', frPractitioner({ family: 'Crépin', given: 'Anaïs', rpps: '10004567890', prefix: 'MME' }));
      const muller = await add('muller', frPractitioner({ family: 'Müller', given: 'Noël', rpps: '10005678901', prefix: 'M' }));
      const gluco = await add('gluco', { resourceType: 'Device', status: 'active', deviceName: [{ name: 'GlucoSuivi', type: 'user-friendly-name' }], type: { text: 'Application de suivi glycémique' } });

      // the agenda (summer time in June, winter time in January)
      const appt = (patient: string, practitioner: string, start: string, end: string, status: string, kind: typeof GENERAL_PRACTICE, description: string, created: string) =>
        frAppointment({ patient, practitioner, start, end, status, kind, description, created });
      await add('ap1', appt(helene, dupre, '2025-06-10T09:00:00+02:00', '2025-06-10T09:20:00+02:00', 'booked', GENERAL_PRACTICE, 'Consultation de suivi', '2025-05-28'));
      await add('ap2', appt(helene, crepin, '2025-06-10T16:30:00+02:00', '2025-06-10T17:00:00+02:00', 'booked', CARDIOLOGY, 'Échographie cardiaque', '2025-05-02'));
      await add('ap3', appt(helene, dupre, '2025-06-03T11:00:00+02:00', '2025-06-03T11:20:00+02:00', 'cancelled', GENERAL_PRACTICE, "Renouvellement d'ordonnance", '2025-05-20'));
      await add('ap4', appt(helene, muller, '2025-07-01T14:00:00+02:00', '2025-07-01T14:30:00+02:00', 'proposed', DERMATOLOGY, 'Contrôle des grains de beauté', '2025-06-01'));
      await add('ap5', appt(loic, dupre, '2025-06-10T10:00:00+02:00', '2025-06-10T10:20:00+02:00', 'booked', GENERAL_PRACTICE, 'Certificat de non contre-indication au sport', '2025-06-02'));
      await add('ap6', appt(loic, crepin, '2025-05-20T08:30:00+02:00', '2025-05-20T09:00:00+02:00', 'fulfilled', CARDIOLOGY, 'Pose de Holter ECG', '2025-04-15'));
      await add('ap7', appt(helene, dupre, '2025-01-14T17:45:00+01:00', '2025-01-14T18:00:00+01:00', 'fulfilled', GENERAL_PRACTICE, 'Vaccination antigrippale', '2025-01-05'));
      // the same start as ap4, in another practice: a tie for _sort=date
      await add('ap8', appt(heleneG, crepin, '2025-07-01T14:00:00+02:00', '2025-07-01T14:45:00+02:00', 'booked', CARDIOLOGY, 'Épreuve d\'effort', '2025-06-12'));

      // the person's access decisions
      await add('co1', esConsent({ patient: helene, category: 'professional-access', type: 'deny', actor: muller, dateTime: '2025-03-02T10:15:00+01:00', start: '2025-03-02' }));
      await add('co2', esConsent({ patient: helene, category: 'app-data-sync', type: 'permit', actor: gluco, dateTime: '2025-04-10T08:00:00+02:00', start: '2025-04-10', end: '2026-04-10' }));
      await add('co3', esConsent({ patient: helene, category: 'professional-access', type: 'permit', actor: crepin, dateTime: '2024-09-15T18:40:00+02:00', start: '2024-09-15', end: '2025-02-01', status: 'inactive' }));
      await add('co4', esConsent({ patient: loic, category: 'professional-access', type: 'deny', actor: dupre, dateTime: '2025-05-21T07:55:00+02:00', start: '2025-05-21' }));

      // secure messages and notifications
      await add('cm1', esMessage({ subject: helene, sender: dupre, recipient: helene, sent: '2025-05-06T14:02:00+02:00', text: "Bonjour Madame Lefèvre, vos résultats d'analyse sont normaux. Bien cordialement, Dr Dupré" }));
      await add('cm2', esNotification({ patient: helene, event: 'new-document', sent: '2025-05-06T14:05:00+02:00', text: 'Un nouveau document a été ajouté à votre profil : compte rendu de biologie.' }));
      await add('cm3', esMessage({ subject: helene, sender: helene, recipient: dupre, sent: '2025-05-07T09:15:00+02:00', text: 'Merci docteur. Faut-il refaire une prise de sang dans six mois ?' }));
      await add('cm4', esMessage({ subject: helene, sender: crepin, recipient: helene, sent: '2025-06-11T18:20:00+02:00', text: 'Votre échographie cardiaque est rassurante, nous en reparlerons à la prochaine consultation.' }));
      await add('cm5', esMessage({ subject: loic, sender: loic, recipient: crepin, status: 'preparation', text: 'Bonjour docteur, le Holter me gêne pour dormir, est-ce normal ?' }));
      await add('cm6', esNotification({ patient: loic, event: 'first-access', sent: '2025-05-20T08:35:00+02:00', text: 'Le Dr Anaïs Crépin a consulté votre profil pour la première fois.' }));

      // allergies
      await add('al1', esAllergy({ patient: helene, code: '764146007', display: 'Penicillin', text: 'Allergie à la pénicilline', category: 'medication', clinicalStatus: 'active', criticality: 'high', recordedDate: '2024-11-20', recorder: dupre, reaction: { code: '271807003', display: 'Eruption of skin', severity: 'moderate' } }));
      await add('al2', esAllergy({ patient: helene, code: '227493005', display: 'Cashew nut', text: 'Noix de cajou', category: 'food', clinicalStatus: 'active', criticality: 'high', recordedDate: '2025-02-03', reaction: { code: '39579001', display: 'Anaphylaxis', severity: 'severe' } }));
      await add('al3', esAllergy({ patient: helene, code: '256259004', display: 'Pollen', text: 'Pollens de graminées', category: 'environment', clinicalStatus: 'resolved', criticality: 'low', recordedDate: '2019-04-12' }));
      await add('al4', esAllergy({ patient: loic, code: '764146007', display: 'Penicillin', text: 'Pénicilline', category: 'medication', clinicalStatus: 'active', recordedDate: '2025-05-21', recorder: crepin }));
      await add('al6', esAllergy({ patient: laetitia, code: '3718001', display: "Cow's milk", text: 'Lait de vache', category: 'food', clinicalStatus: 'inactive', criticality: 'low', recordedDate: '2021-09-30' }));
      await add('al5', esAllergy({ patient: heleneG, code: '111088007', display: 'Latex', text: 'Latex', category: 'environment', clinicalStatus: 'inactive', criticality: 'unable-to-assess', recordedDate: '2023-10-02' }));
    });

    describe('Appointment: the agenda', () => {
      test('by patient, actor and practitioner, as a reference or a bare id', async () => {
        expect(await found(`Appointment?patient=Patient/${f.helene.id}`)).toEqual(['ap1', 'ap2', 'ap3', 'ap4', 'ap7']);
        expect(await found(`Appointment?patient=${f.loic.id}`)).toEqual(['ap5', 'ap6']);
        expect(await found(`Appointment?actor=Practitioner/${f.dupre.id}`)).toEqual(['ap1', 'ap3', 'ap5', 'ap7']);
        expect(await found(`Appointment?actor=Patient/${f.loic.id}`)).toEqual(['ap5', 'ap6']);
        expect(await found(`Appointment?practitioner=${f.crepin.id}`)).toEqual(['ap2', 'ap6', 'ap8']);
        expect(await found(`Appointment?patient=${f.helene.id}&practitioner=${f.dupre.id}`)).toEqual(['ap1', 'ap3', 'ap7']);
        // a practitioner is no patient
        expect(await found(`Appointment?patient=${f.dupre.id}`)).toEqual([]);
        expect(await found(`Appointment?patient=${f.heleneG.id}`)).toEqual(['ap8']);
      });

      test('dates: a day, ranges with ge/le/lt, times with their offset', async () => {
        expect(await found('Appointment?date=2025-06-10')).toEqual(['ap1', 'ap2', 'ap5']);
        expect(await found(`Appointment?date=eq2025-06-10&patient=${f.helene.id}`)).toEqual(['ap1', 'ap2']);
        expect(await found('Appointment?date=ge2025-06-03&date=le2025-06-10')).toEqual(['ap1', 'ap2', 'ap3', 'ap5']);
        expect(await found('Appointment?date=ge2025-06-01&date=lt2025-07-01')).toEqual(['ap1', 'ap2', 'ap3', 'ap5']);
        expect(await found('Appointment?date=ge2025-07-01')).toEqual(['ap4', 'ap8']);
        expect(await found('Appointment?date=lt2025-06-01')).toEqual(['ap6', 'ap7']);
        expect(await found('Appointment?date=2025-01')).toEqual(['ap7']);
        // 10:00 in Paris in June is 08:00 UTC: the one at 10:00 and the one in the afternoon
        expect(await found(`Appointment?date=${encodeURIComponent('ge2025-06-10T10:00:00+02:00')}&date=le2025-06-10`)).toEqual(['ap2', 'ap5']);
        expect(await found('Appointment?date=ge2025-06-10T08:00:00Z&date=lt2025-06-10T14:00:00Z')).toEqual(['ap5']);
        // starts after, ends before, not on that day
        expect(await found('Appointment?date=sa2025-06-10')).toEqual(['ap4', 'ap8']);
        expect(await found('Appointment?date=eb2025-06-01')).toEqual(['ap6', 'ap7']);
        expect(await found('Appointment?date=ne2025-06-10')).toEqual(['ap3', 'ap4', 'ap6', 'ap7', 'ap8']);
        // 17:45 in Paris in January is 16:45 UTC
        expect(await found('Appointment?date=2025-01-14T16:45Z')).toEqual(['ap7']);
        expect(await found('Appointment?date=2025-01-14T17:45Z')).toEqual([]);
      });

      test('status, service type and specialty', async () => {
        expect(await found('Appointment?status=booked')).toEqual(['ap1', 'ap2', 'ap5', 'ap8']);
        expect(await found(`Appointment?status=booked,proposed&patient=${f.helene.id}`)).toEqual(['ap1', 'ap2', 'ap4']);
        expect(await found(`Appointment?status:not=cancelled&patient=${f.helene.id}`)).toEqual(['ap1', 'ap2', 'ap4', 'ap7']);
        expect(await found('Appointment?status=fulfilled')).toEqual(['ap6', 'ap7']);
        expect(await found(`Appointment?service-type=${SERVICE_TYPE}|165`)).toEqual(['ap2', 'ap6', 'ap8']);
        expect(await found('Appointment?service-type=124')).toEqual(['ap1', 'ap3', 'ap5', 'ap7']);
        expect(await found(`Appointment?service-type=${SERVICE_TYPE}|124&status=booked`)).toEqual(['ap1', 'ap5']);
        expect(await found(`Appointment?specialty=${SPECIALTY}|SM15`)).toEqual(['ap4']);
        expect(await found('Appointment?service-type:text=cardio')).toEqual(['ap2', 'ap6', 'ap8']);
        // the participants' answers: the practitioner has yet to accept the proposal; the patient declined the cancelled one
        expect(await found('Appointment?part-status=needs-action')).toEqual(['ap4']);
        expect(await found('Appointment?part-status=declined')).toEqual(['ap3']);
      });

      test('chains to the practitioner and the patient, accents ignored', async () => {
        expect(await found('Appointment?practitioner.name=dupre')).toEqual(['ap1', 'ap3', 'ap5', 'ap7']);
        expect(await found('Appointment?practitioner.name=CRÉPIN')).toEqual(['ap2', 'ap6', 'ap8']);
        // both Hélènes
        expect(await found('Appointment?patient.name=helene&status=booked')).toEqual(['ap1', 'ap2', 'ap8']);
        expect(await found('Appointment?patient.family=LEFEVRE&status=booked')).toEqual(['ap1', 'ap2']);
        expect(await found(`Appointment?patient.identifier=${INS_NIR}|${insNir('2800875056123')}&date=2025-06`)).toEqual(['ap1', 'ap2', 'ap3']);
      });

      test('_sort=date and -date, paged through next links, with the total on every page', async () => {
        const q = `Appointment?patient=${f.helene.id}`;
        expect(await inOrder(`${q}&_sort=date`)).toEqual(['ap7', 'ap3', 'ap1', 'ap2', 'ap4']);
        expect(await inOrder(`${q}&_sort=-date`)).toEqual(['ap4', 'ap2', 'ap1', 'ap3', 'ap7']);
        expect(await inOrder(`${q}&_sort=date&_count=2`, 5)).toEqual(['ap7', 'ap3', 'ap1', 'ap2', 'ap4']);
        expect(await inOrder(`${q}&_sort=-date&_count=2`, 5)).toEqual(['ap4', 'ap2', 'ap1', 'ap3', 'ap7']);
        expect(await inOrder('Appointment?date=2025-06-10&_sort=-date&_count=1', 3)).toEqual(['ap2', 'ap5', 'ap1']);
        // the next appointments of the agenda, soonest first
        expect(await inOrder(`${q}&date=ge2025-06-05&status=booked,proposed&_sort=date&_count=2`, 3)).toEqual(['ap1', 'ap2', 'ap4']);
        // ap4 and ap8 start at the same minute: one page or one at a time, the same order, each once
        const summer = 'Appointment?date=ge2025-06-10&_sort=date';
        const onePage = await inOrder(summer, 5);
        expect(onePage.slice(0, 3)).toEqual(['ap1', 'ap5', 'ap2']);
        expect([...onePage.slice(3)].sort()).toEqual(['ap4', 'ap8']);
        expect(await inOrder(`${summer}&_count=1`, 5)).toEqual(onePage);
        const latest = await inOrder('Appointment?date=ge2025-06-10&_sort=-date', 5);
        expect([...latest.slice(0, 2)].sort()).toEqual(['ap4', 'ap8']);
        expect(latest.slice(2)).toEqual(['ap2', 'ap5', 'ap1']);
        expect(await inOrder('Appointment?date=ge2025-06-10&_sort=-date&_count=1', 5)).toEqual(latest);
        const first = await get(withTotal(`${q}&_sort=date&_count=2`));
        expect(first.total).toBe(5);
        expect(names(ids(first))).toEqual(['ap7', 'ap3']);
      });

      test('_include of the practitioners and the patient', async () => {
        const b = await get(`Appointment?date=2025-06-10&_include=Appointment:practitioner&_include=Appointment:patient&_total=accurate`);
        expect(names(ids(b)).sort()).toEqual(['ap1', 'ap2', 'ap5']);
        expect(b.total).toBe(3);
        expect(included(b)).toEqual(['crepin', 'dupre', 'helene', 'loic']);
      });
    });

    describe('Consent: the access decisions of the person', () => {
      test('by patient, status and category', async () => {
        expect(await found(`Consent?patient=${f.helene.id}`)).toEqual(['co1', 'co2', 'co3']);
        expect(await found(`Consent?patient=Patient/${f.helene.id}&status=active`)).toEqual(['co1', 'co2']);
        expect(await found('Consent?status=inactive')).toEqual(['co3']);
        expect(await found(`Consent?category=${CONSENT_CATEGORY}|professional-access`)).toEqual(['co1', 'co3', 'co4']);
        expect(await found('Consent?category=app-data-sync')).toEqual(['co2']);
        expect(await found(`Consent?category=${CONSENT_CATEGORY}|professional-access&status=active&patient=${f.helene.id}`)).toEqual(['co1']);
        expect(await found('Consent?scope=patient-privacy')).toEqual(['co1', 'co2', 'co3', 'co4']);
        expect(await found('Consent?action=collect')).toEqual(['co2']);
      });

      test('by actor: who is allowed or blocked', async () => {
        expect(await found(`Consent?actor=Practitioner/${f.muller.id}`)).toEqual(['co1']);
        expect(await found(`Consent?actor=Device/${f.gluco.id}`)).toEqual(['co2']);
        expect(await found(`Consent?actor=${f.dupre.id}`)).toEqual(['co4']);
        expect(await found('Consent?actor:Practitioner.name=crepin')).toEqual(['co3']);
        expect(await found(`Consent?actor:Practitioner.identifier=https://rpps.esante.gouv.fr|10005678901`)).toEqual(['co1']);
        expect(await found(`Consent?consentor=Patient/${f.loic.id}`)).toEqual(['co4']);
        // the professionals somebody blocks or allows, from the Practitioner side
        expect(await found('Practitioner?_has:Consent:actor:status=active')).toEqual(['dupre', 'muller']);
        expect(await found(`Practitioner?_has:Consent:actor:patient=${f.helene.id}`)).toEqual(['crepin', 'muller']);
        const b = await get(`Consent?patient=${f.helene.id}&_include=Consent:actor`);
        expect(included(b)).toEqual(['crepin', 'gluco', 'muller']);
      });

      test('by the date of the decision and by the period it is in force', async () => {
        expect(await found('Consent?date=ge2025-01-01')).toEqual(['co1', 'co2', 'co4']);
        expect(await found('Consent?date=lt2025-01-01')).toEqual(['co3']);
        expect(await found('Consent?date=2025-04-10')).toEqual(['co2']);
        // in force on 15 June 2025: the period overlaps that day (an open period has no end)
        expect(await found('Consent?period=le2025-06-15&period=ge2025-06-15')).toEqual(['co1', 'co2', 'co4']);
        expect(await found(`Consent?period=le2025-06-15&period=ge2025-06-15&patient=${f.helene.id}&status=active`)).toEqual(['co1', 'co2']);
        // in force on 1 January 2025: only the one since revoked
        expect(await found('Consent?period=le2025-01-01&period=ge2025-01-01')).toEqual(['co3']);
        // still in force after 2026-04-10: the open-ended ones
        expect(await found('Consent?period=gt2026-04-10')).toEqual(['co1', 'co4']);
        expect(await inOrder(`Consent?patient=${f.helene.id}&_sort=-date`)).toEqual(['co2', 'co1', 'co3']);
      });
    });

    describe('Communication: secure messages and notifications', () => {
      test('by subject, recipient and sender', async () => {
        expect(await found(`Communication?subject=Patient/${f.helene.id}`)).toEqual(['cm1', 'cm2', 'cm3', 'cm4']);
        expect(await found(`Communication?patient=${f.loic.id}`)).toEqual(['cm5', 'cm6']);
        expect(await found(`Communication?recipient=Patient/${f.helene.id}`)).toEqual(['cm1', 'cm2', 'cm4']);
        expect(await found(`Communication?recipient=Practitioner/${f.dupre.id}`)).toEqual(['cm3']);
        expect(await found(`Communication?sender=Practitioner/${f.dupre.id}`)).toEqual(['cm1']);
        expect(await found(`Communication?sender=${f.helene.id}`)).toEqual(['cm3']);
        expect(await found(`Communication?sender=Practitioner/${f.crepin.id},Practitioner/${f.dupre.id}&recipient=${f.helene.id}`)).toEqual(['cm1', 'cm4']);
      });

      test('category, status and sent ranges', async () => {
        expect(await found(`Communication?category=${COMMUNICATION_CATEGORY}|notification`)).toEqual(['cm2', 'cm6']);
        expect(await found(`Communication?category=message&subject=${f.helene.id}`)).toEqual(['cm1', 'cm3', 'cm4']);
        expect(await found('Communication?status=preparation')).toEqual(['cm5']);
        expect(await found(`Communication?status=completed&subject=${f.loic.id}`)).toEqual(['cm6']);
        expect(await found('Communication?sent=2025-05-06')).toEqual(['cm1', 'cm2']);
        expect(await found('Communication?sent=ge2025-05-06&sent=lt2025-05-07')).toEqual(['cm1', 'cm2']);
        expect(await found(`Communication?sent=${encodeURIComponent('gt2025-05-20T08:00:00+02:00')}`)).toEqual(['cm4', 'cm6']);
        expect(await found(`Communication?sent=${encodeURIComponent('le2025-05-06T14:02:00+02:00')}`)).toEqual(['cm1']);
        expect(await found('Communication?sent=2025-05')).toEqual(['cm1', 'cm2', 'cm3', 'cm6']);
        // a draft is not sent yet; a notification has no sender
        expect(await found('Communication?sent:missing=true')).toEqual(['cm5']);
        expect(await found('Communication?sender:missing=true')).toEqual(['cm2', 'cm6']);
        expect(await inOrder(`Communication?subject=${f.helene.id}&_sort=-sent&_count=3`, 4)).toEqual(['cm4', 'cm3', 'cm2', 'cm1']);
      });

      test('_include=Communication:sender', async () => {
        const b = await get(`Communication?subject=${f.helene.id}&category=message&_include=Communication:sender&_total=accurate`);
        expect(names(ids(b)).sort()).toEqual(['cm1', 'cm3', 'cm4']);
        expect(b.total).toBe(3);
        expect(included(b)).toEqual(['crepin', 'dupre', 'helene']);
        const typed = await get(`Communication?subject=${f.helene.id}&_include=Communication:sender:Practitioner`);
        expect(included(typed)).toEqual(['crepin', 'dupre']);
        // a practitioner's inbox, from the Practitioner
        const inbox = await get(`Practitioner?_id=${f.dupre.id},${f.crepin.id}&_revinclude=Communication:recipient`);
        expect(names(ids(inbox)).sort()).toEqual(['crepin', 'dupre']);
        expect(included(inbox)).toEqual(['cm3', 'cm5']);
      });

      test('chains through recipient and sender, accents and case ignored', async () => {
        expect(await found('Communication?recipient:Practitioner.name=dupré')).toEqual(['cm3']);
        expect(await found('Communication?recipient:Practitioner.name=crepin')).toEqual(['cm5']);
        expect(await found('Communication?recipient:Patient.name=HELENE')).toEqual(['cm1', 'cm2', 'cm4']);
        expect(await found('Communication?sender:Practitioner.family=CRÉPIN')).toEqual(['cm4']);
        expect(await found(`Communication?recipient:Practitioner.identifier=https://rpps.esante.gouv.fr|10003456789`)).toEqual(['cm3']);
        expect(await found('Communication?recipient:Practitioner.name=lefevre')).toEqual([]);
      });
    });

    describe('AllergyIntolerance: the medical profile', () => {
      test('by patient, clinical status and criticality', async () => {
        expect(await found(`AllergyIntolerance?patient=${f.helene.id}`)).toEqual(['al1', 'al2', 'al3']);
        expect(await found('AllergyIntolerance?clinical-status=active')).toEqual(['al1', 'al2', 'al4']);
        expect(await found(`AllergyIntolerance?clinical-status=${ALLERGY_CLINICAL}|active&patient=Patient/${f.helene.id}`)).toEqual(['al1', 'al2']);
        expect(await found('AllergyIntolerance?clinical-status=resolved,inactive')).toEqual(['al3', 'al5', 'al6']);
        expect(await found('AllergyIntolerance?criticality=high')).toEqual(['al1', 'al2']);
        expect(await found('AllergyIntolerance?category=food')).toEqual(['al2', 'al6']);
        expect(await inOrder(`AllergyIntolerance?patient=${f.helene.id}&_sort=-date`)).toEqual(['al2', 'al1', 'al3']);
      });

      test('code: SNOMED CT system|code, the code alone, another system, the text', async () => {
        expect(await found(`AllergyIntolerance?code=${SNOMED}|764146007`)).toEqual(['al1', 'al4']);
        expect(await found('AllergyIntolerance?code=764146007')).toEqual(['al1', 'al4']);
        expect(await found(`AllergyIntolerance?code=${SNOMED}|764146007,${SNOMED}|227493005&patient=${f.helene.id}`)).toEqual(['al1', 'al2']);
        expect(await found('AllergyIntolerance?code=http://loinc.org|764146007')).toEqual([]);
        expect(await found('AllergyIntolerance?code=|764146007')).toEqual([]);
        expect(await found(`AllergyIntolerance?code=${SNOMED}|`)).toEqual(['al1', 'al2', 'al3', 'al4', 'al5', 'al6']);
        // :text matches the start of the text or of a display, accents and case ignored
        expect(await found('AllergyIntolerance?code:text=PENICILLIN')).toEqual(['al1', 'al4']);
        expect(await found('AllergyIntolerance?code:text=pénicilline')).toEqual(['al4']);
        expect(await found('AllergyIntolerance?code:text=allergie a la')).toEqual(['al1']);
        expect(await found(`AllergyIntolerance?manifestation=${SNOMED}|39579001`)).toEqual(['al2']);
      });

      test(':missing', async () => {
        expect(await found('AllergyIntolerance?criticality:missing=true')).toEqual(['al4']);
        expect(await found('AllergyIntolerance?criticality:missing=false')).toEqual(['al1', 'al2', 'al3', 'al5', 'al6']);
        expect(await found('AllergyIntolerance?recorder:missing=false')).toEqual(['al1', 'al4']);
        expect(await found(`AllergyIntolerance?recorder:missing=true&patient=${f.helene.id}`)).toEqual(['al2', 'al3']);
      });

      test('_summary=count, _elements, and _has from Patient', async () => {
        const count = await get(`AllergyIntolerance?patient=${f.helene.id}&_summary=count`);
        expect(count.total).toBe(3);
        expect(count.entry).toBeUndefined();
        const elements = await get(`AllergyIntolerance?patient=${f.helene.id}&criticality=high&_elements=code,criticality`);
        // and patient, mandatory (1..1): a server should always return mandatory elements
        expect((elements.entry ?? []).map((e) => Object.keys(e.resource).sort())).toEqual([
          ['code', 'criticality', 'id', 'meta', 'patient', 'resourceType'],
          ['code', 'criticality', 'id', 'meta', 'patient', 'resourceType'],
        ]);
        expect(await found(`Patient?_has:AllergyIntolerance:patient:code=${SNOMED}|764146007`)).toEqual(['helene', 'loic']);
        expect(await found('Patient?_has:AllergyIntolerance:patient:criticality=high')).toEqual(['helene']);
      });

      test('_revinclude from Patient', async () => {
        const one = await get(`Patient?_id=${f.helene.id}&_revinclude=AllergyIntolerance:patient&_total=accurate`);
        expect(names(ids(one))).toEqual(['helene']);
        expect(one.total).toBe(1);
        expect(included(one)).toEqual(['al1', 'al2', 'al3']);
        const both = await get('Patient?name=hélène&_revinclude=AllergyIntolerance:patient&_total=accurate');
        expect(names(ids(both)).sort()).toEqual(['helene', 'heleneG']);
        expect(both.total).toBe(2);
        expect(included(both)).toEqual(['al1', 'al2', 'al3', 'al5']);
      });

      test('chains to the patient: accents, ligatures and case ignored, :exact keeps them', async () => {
        expect(await found('AllergyIntolerance?patient.name=helene')).toEqual(['al1', 'al2', 'al3', 'al5']);
        expect(await found('AllergyIntolerance?patient.name=HÉLÈNE')).toEqual(['al1', 'al2', 'al3', 'al5']);
        expect(await found('AllergyIntolerance?patient.name=hele')).toEqual(['al1', 'al2', 'al3', 'al5']);
        expect(await found('AllergyIntolerance?patient.family=lefevre')).toEqual(['al1', 'al2', 'al3']);
        expect(await found('AllergyIntolerance?patient.name:contains=fèv')).toEqual(['al1', 'al2', 'al3']);
        expect(await found('AllergyIntolerance?patient.name:exact=Hélène')).toEqual(['al1', 'al2', 'al3', 'al5']);
        expect(await found('AllergyIntolerance?patient.name:exact=helene')).toEqual([]);
        expect(await found('AllergyIntolerance?patient.name=loic&clinical-status=active')).toEqual(['al4']);
        // ligatures: Lætitia Cœur is laetitia coeur, as the INS writes her
        expect(await found('AllergyIntolerance?patient.name=laetitia')).toEqual(['al6']);
        expect(await found('AllergyIntolerance?patient.family=COEUR')).toEqual(['al6']);
        expect(await found('AllergyIntolerance?patient.family=cœur')).toEqual(['al6']);
        expect(await found(`AllergyIntolerance?patient.identifier=${INS_NIR}|${insNir('2800875056123')}`)).toEqual(['al1', 'al2', 'al3']);
        expect(await found('AllergyIntolerance?recorder:Practitioner.name=francois')).toEqual(['al1']);
      });
    });
  },
  { requiredProfiles: 'fr' },
);
