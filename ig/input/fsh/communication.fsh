Profile: EspaceSanteCommunication
Parent: Communication
Id: espace-sante-communication
Title: "Espace santé Communication: a secure message or a notification"
Description: """
A communication in the person's space, told apart by its category: a `message` of the secure
messaging between the person (or a guardian) and health professionals, with a sender, recipients and
content; or a `notification` the space sends to the person (or their guardians) about an event of
their space, named in reasonCode (new document, document changed, new message, first access by a
professional, emergency access).
"""
* ^status = #draft
* ^experimental = false
* status MS
* category 1..1 MS
* category from EspaceSanteCommunicationCategoryVS (required)
* subject 1..1 MS
* subject only Reference($FRCorePatient)
* sent MS
* received MS
* sender MS
* sender only Reference($FRCorePatient or $FRCoreRelatedPerson or $FRCorePractitioner or $FRCorePractitionerRole or $FRCoreOrganization or Device)
* recipient MS
* recipient only Reference($FRCorePatient or $FRCoreRelatedPerson or $FRCorePractitioner or $FRCorePractitionerRole or $FRCoreOrganization)
* reasonCode MS
* reasonCode from EspaceSanteNotificationEventVS (extensible)
* payload MS
* payload.content[x] MS
* obeys es-comm-1 and es-comm-2

Invariant: es-comm-1
Description: "A secure message has a sender, at least one recipient and content."
Severity: #error
Expression: "category.coding.where(system = 'https://espace-sante.example/fhir/CodeSystem/espace-sante-communication-category' and code = 'message').exists() implies (sender.exists() and recipient.exists() and payload.exists())"

Invariant: es-comm-2
Description: "A notification goes to the person or their guardians (Patient or RelatedPerson) and names its event in reasonCode."
Severity: #error
Expression: "category.coding.where(system = 'https://espace-sante.example/fhir/CodeSystem/espace-sante-communication-category' and code = 'notification').exists() implies (recipient.exists() and recipient.all(reference.matches('(^|/)(Patient|RelatedPerson)/[A-Za-z0-9.-]+$')) and reasonCode.coding.where(system = 'https://espace-sante.example/fhir/CodeSystem/espace-sante-notification-event').exists())"

Instance: communication-message
InstanceOf: EspaceSanteCommunication
Title: "A secure message from the person's GP"
Usage: #example
* status = #completed
* category = EspaceSanteCommunicationCategory#message
* subject = Reference(Patient/jeanne-martin)
* sent = "2025-05-06T14:02:00+02:00"
* sender = Reference(Practitioner/dr-durand)
* recipient = Reference(Patient/jeanne-martin)
* payload.contentString = "Bonjour, vos résultats d'analyse sont normaux. Bien cordialement, Dr Durand"

Instance: communication-notification
InstanceOf: EspaceSanteCommunication
Title: "A notification: a new document in the space"
Usage: #example
* status = #completed
* category = EspaceSanteCommunicationCategory#notification
* subject = Reference(Patient/jeanne-martin)
* sent = "2025-05-06T14:05:00+02:00"
* recipient = Reference(Patient/jeanne-martin)
* reasonCode = EspaceSanteNotificationEvent#new-document
* about = Reference(DocumentReference/cr-bio-2025-05-06)
* payload.contentString = "Un nouveau document a été ajouté à votre profil : compte rendu de biologie."
