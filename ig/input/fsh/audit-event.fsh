Profile: EspaceSanteAuditEvent
Parent: $TDEAuditEvent
Id: espace-sante-auditevent
Title: "Espace santé AuditEvent: one access to a person's space"
Description: """
The trace the server writes for every read, search and write in a person's space (derived from the
traceability profile tde-auditevent of ans.fhir.fr.tde): what was done (action, subtype), when
(period, recorded), by whom (agent, requestor), whether it succeeded (outcome), the server that saw it
(source.observer) and whose space it was (the entity slice `patient`). Emergency access is recorded
with purposeOfEvent. Every trace of the French traceability guide stays valid: what TDE leaves optional
(action, outcome, entity) stays optional here; when an entity names the person, it is a FR Core Patient.
"""
* ^status = #draft
* ^experimental = false
* action MS
* outcome MS
* purposeOfEvent MS
* agent.requestor MS
* agent.who only Reference($FRCorePractitioner or $FRCorePractitionerRole or $FRCorePatient or $FRCoreRelatedPerson or $FRCoreOrganization or Device)
* source.observer only Reference(Device)
* entity MS
* entity ^slicing.discriminator.type = #pattern
* entity ^slicing.discriminator.path = "role"
* entity ^slicing.rules = #open
* entity ^slicing.description = "The person whose space was accessed, then the resources concerned"
* entity contains patient 0..1 MS
* entity[patient].role 1..1
* entity[patient].role = $object-role#1 "Patient"
* entity[patient].what 1..1
* entity[patient].what only Reference($FRCorePatient)

Instance: auditevent-read-document
InstanceOf: EspaceSanteAuditEvent
Title: "A practitioner read a document of the person's space"
Usage: #example
* type = $audit-event-type#rest "RESTful Operation"
* subtype = $restful-interaction#read "read"
* action = #R
* period.start = "2025-05-06T14:10:00+02:00"
* period.end = "2025-05-06T14:10:01+02:00"
* recorded = "2025-05-06T14:10:01+02:00"
* outcome = #0
* agent.who = Reference(Practitioner/dr-durand)
* agent.requestor = true
* source.observer = Reference(Device/espace-sante-fhir-server)
* entity[patient].what = Reference(Patient/jeanne-martin)
* entity[patient].role = $object-role#1 "Patient"
* entity[1].what = Reference(DocumentReference/cr-bio-2025-05-06)
* entity[1].type = $audit-entity-type#2 "System Object"
* entity[1].role = $object-role#3 "Report"
