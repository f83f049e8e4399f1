// ---------------------------------------------------------------- Consent: what the decision is about

CodeSystem: EspaceSanteConsentCategory
Id: espace-sante-consent-category
Title: "Espace santé: access decision categories"
Description: "The kinds of access decision a person takes on their personal health space."
* ^caseSensitive = true
* ^experimental = false
* #professional-access "Professional access" "Allows or blocks a health professional (Practitioner or PractitionerRole) or an organization from the person's space."
* #app-data-sync "Catalogue app data sync" "Authorizes (or revokes) a certified catalogue app to synchronize data with the person's space."

ValueSet: EspaceSanteConsentCategoryVS
Id: espace-sante-consent-category
Title: "Espace santé: access decision categories"
Description: "Every code of the access decision categories."
* ^experimental = false
* include codes from system EspaceSanteConsentCategory

// ---------------------------------------------------------------- Communication: message or notification

CodeSystem: EspaceSanteCommunicationCategory
Id: espace-sante-communication-category
Title: "Espace santé: communication categories"
Description: "Tells a secure message between the person and professionals from a notification the space sends to the person."
* ^caseSensitive = true
* ^experimental = false
* #message "Secure message" "A message of the secure messaging, between the person (or a guardian) and health professionals."
* #notification "Notification" "A notification the space sends to the person (or their guardians) about an event in their space."

ValueSet: EspaceSanteCommunicationCategoryVS
Id: espace-sante-communication-category
Title: "Espace santé: communication categories"
Description: "Every code of the communication categories."
* ^experimental = false
* include codes from system EspaceSanteCommunicationCategory

CodeSystem: EspaceSanteNotificationEvent
Id: espace-sante-notification-event
Title: "Espace santé: notification events"
Description: "The events the person is notified of."
* ^caseSensitive = true
* ^experimental = false
* #new-document "New document" "A document was added to the space."
* #document-changed "Document changed" "A document of the space was replaced or changed."
* #new-message "New message" "A secure message arrived."
* #first-access "First access by a professional" "A professional opened the space for the first time."
* #emergency-access "Emergency access" "A professional used emergency access (bris de glace) to the space."

ValueSet: EspaceSanteNotificationEventVS
Id: espace-sante-notification-event
Title: "Espace santé: notification events"
Description: "Every code of the notification events."
* ^experimental = false
* include codes from system EspaceSanteNotificationEvent
