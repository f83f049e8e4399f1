// French base profiles
Alias: $FRCorePatient = https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient
Alias: $FRCorePractitioner = https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-practitioner
Alias: $FRCorePractitionerRole = https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-practitioner-role
Alias: $FRCoreOrganization = https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-organization
Alias: $FRCoreRelatedPerson = https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-related-person
Alias: $TDEAuditEvent = https://interop.esante.gouv.fr/ig/fhir/tde/StructureDefinition/tde-auditevent

// code systems
Alias: $consentscope = http://terminology.hl7.org/CodeSystem/consentscope
Alias: $consentaction = http://terminology.hl7.org/CodeSystem/consentaction
Alias: $v3-ParticipationType = http://terminology.hl7.org/CodeSystem/v3-ParticipationType
Alias: $v3-ActReason = http://terminology.hl7.org/CodeSystem/v3-ActReason
Alias: $object-role = http://terminology.hl7.org/CodeSystem/object-role
Alias: $audit-entity-type = http://terminology.hl7.org/CodeSystem/audit-entity-type
Alias: $audit-event-type = http://terminology.hl7.org/CodeSystem/audit-event-type
Alias: $restful-interaction = http://hl7.org/fhir/restful-interaction
Alias: $allergy-clinical = http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical
Alias: $allergy-verification = http://terminology.hl7.org/CodeSystem/allergyintolerance-verification
Alias: $sct = http://snomed.info/sct
Alias: $loinc = http://loinc.org
Alias: $rpps = urn:oid:1.2.250.1.71.4.2.1
