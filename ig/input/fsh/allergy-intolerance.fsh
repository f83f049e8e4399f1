Profile: EspaceSanteAllergyIntolerance
Parent: AllergyIntolerance
Id: espace-sante-allergyintolerance
Title: "Espace santé AllergyIntolerance"
Description: "An allergy or intolerance of the person's medical profile: what (code), whose (an FR Core Patient), since when (onset) and the reactions seen."
* ^status = #draft
* ^experimental = false
* clinicalStatus MS
* verificationStatus MS
* type MS
* category MS
* criticality MS
* code 1..1 MS
* patient 1..1 MS
* patient only Reference($FRCorePatient)
* onset[x] MS
* onset[x] only dateTime or Age or Period or Range or string
* recordedDate MS
* recorder only Reference($FRCorePatient or $FRCorePractitioner or $FRCorePractitionerRole or $FRCoreRelatedPerson)
* asserter only Reference($FRCorePatient or $FRCorePractitioner or $FRCorePractitionerRole or $FRCoreRelatedPerson)
* reaction MS
* reaction.substance MS
* reaction.manifestation MS
* reaction.onset MS
* reaction.severity MS

Instance: allergy-penicillin
InstanceOf: EspaceSanteAllergyIntolerance
Title: "Penicillin allergy with a skin rash"
Usage: #example
* clinicalStatus = $allergy-clinical#active
* verificationStatus = $allergy-verification#confirmed
* type = #allergy
* category = #medication
* criticality = #high
* code = $sct#764146007 "Penicillin"
* patient = Reference(Patient/jeanne-martin)
* onsetDateTime = "2019-06"
* recordedDate = "2024-11-20"
* recorder = Reference(Practitioner/dr-durand)
* reaction.manifestation = $sct#271807003 "Eruption of skin"
* reaction.onset = "2019-06-12"
* reaction.severity = #moderate
