Profile: EspaceSanteConsent
Parent: Consent
Id: espace-sante-consent
Title: "Espace santé Consent: an access decision of the person"
Description: """
One decision of the person on their space: allow or block a health professional (FR Core Practitioner
or PractitionerRole) or an organization (FR Core Organization), or authorize a certified catalogue app
(a Device, the app's software) to synchronize data, for a period and for a scope of data
(provision.class: resource types; provision.securityLabel: confidentiality). A revoked decision has
status `inactive`. The decision is flat: no nested provisions.
"""
* ^status = #draft
* ^experimental = false
* status MS
* scope 1..1 MS
* scope = $consentscope#patient-privacy
* category 1..1 MS
* category from EspaceSanteConsentCategoryVS (required)
* patient 1..1 MS
* patient only Reference($FRCorePatient)
* dateTime 1..1 MS
* performer MS
* performer only Reference($FRCorePatient or $FRCoreRelatedPerson)
* policyRule 0..0
* policy 1..1 MS
* policy.uri 1..1
* policy.uri = "https://espace-sante.example/fhir/policy/access-rules" (exactly)
* provision 1..1 MS
* provision.type 1..1 MS
* provision.period MS
* provision.actor 1..* MS
* provision.actor.role = $v3-ParticipationType#IRCP
* provision.actor.reference only Reference($FRCorePractitioner or $FRCorePractitionerRole or $FRCoreOrganization or Device)
* provision.action MS
* provision.class MS
* provision.securityLabel MS
* provision.provision 0..0
* obeys es-consent-1 and es-consent-2

Invariant: es-consent-1
Description: "A professional access decision names practitioners, practitioner roles or organizations only."
Severity: #error
Expression: "category.coding.where(system = 'https://espace-sante.example/fhir/CodeSystem/espace-sante-consent-category' and code = 'professional-access').exists() implies provision.actor.reference.all((reference.exists() and reference.matches('(^|/)(Practitioner|PractitionerRole|Organization)/[A-Za-z0-9.-]+$')) or (reference.empty() and (type = 'Practitioner' or type = 'PractitionerRole' or type = 'Organization')))"

Invariant: es-consent-2
Description: "A catalogue app authorization names the app (a Device) and what it may do (provision.action)."
Severity: #error
Expression: "category.coding.where(system = 'https://espace-sante.example/fhir/CodeSystem/espace-sante-consent-category' and code = 'app-data-sync').exists() implies (provision.actor.reference.all((reference.exists() and reference.matches('(^|/)Device/[A-Za-z0-9.-]+$')) or (reference.empty() and type = 'Device')) and provision.action.exists())"

Instance: consent-block-practitioner
InstanceOf: EspaceSanteConsent
Title: "The person blocks a practitioner"
Usage: #example
* status = #active
* scope = $consentscope#patient-privacy
* category = EspaceSanteConsentCategory#professional-access
* patient = Reference(Patient/jeanne-martin)
* dateTime = "2025-03-02T10:15:00+01:00"
* performer = Reference(Patient/jeanne-martin)
* policy.uri = "https://espace-sante.example/fhir/policy/access-rules"
* provision.type = #deny
* provision.period.start = "2025-03-02"
* provision.actor.role = $v3-ParticipationType#IRCP
* provision.actor.reference = Reference(Practitioner/dr-durand)

Instance: consent-app-sync
InstanceOf: EspaceSanteConsent
Title: "The person authorizes a glucometer app to push measurements for a year"
Usage: #example
* status = #active
* scope = $consentscope#patient-privacy
* category = EspaceSanteConsentCategory#app-data-sync
* patient = Reference(Patient/jeanne-martin)
* dateTime = "2025-04-10T08:00:00+02:00"
* policy.uri = "https://espace-sante.example/fhir/policy/access-rules"
* provision.type = #permit
* provision.period.start = "2025-04-10"
* provision.period.end = "2026-04-10"
* provision.actor.role = $v3-ParticipationType#IRCP
* provision.actor.reference = Reference(Device/glucometer-app)
* provision.action = $consentaction#collect
* provision.class = http://hl7.org/fhir/resource-types#Observation
