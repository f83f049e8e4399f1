import type { Resource } from 'fhir/r4';
import { FhirError } from '../outcome';
import { SEP, tokenSystemPrefix } from '../search/values';
import { UniqueKeyError } from '../store/errors';
import type { UniqueKeys } from '../store/types';
import { INS_SYSTEMS } from '../validation/required-profiles';

/**
 * Identifiers that name one resource only: an INS (INS-NIR, INS-NIA and their test systems)
 * identifies one person, so two Patients never carry the same one. The store keeps these index keys
 * unique (atomically, against writes sent at the same time too); a write that would break it is
 * answered 409 naming the identifier.
 */
export const UNIQUE_IDENTIFIERS: readonly UniqueKeys[] = [{ type: 'Patient', param: 'identifier', prefixes: [...INS_SYSTEMS].map(tokenSystemPrefix) }];

/** The store's refusal as the client's error: the identifier, and where it is in the resource sent. */
export function uniqueIdentifierError(e: UniqueKeyError, resource: Resource | undefined): FhirError {
  const [, system, value] = e.key.split(SEP);
  const identifiers = (resource as { identifier?: { system?: string; value?: string }[] } | undefined)?.identifier;
  const at = Array.isArray(identifiers) ? identifiers.findIndex((i) => i?.system === system && i?.value === value) : -1;
  return new FhirError(409, 'duplicate', `Another ${e.type} already carries the identifier ${system}|${value}: it identifies one person`, at >= 0 ? `${e.type}.identifier[${at}]` : undefined);
}
