import type { Decision } from '../../policy/decision';
import type { FhirRequest, FhirResponse, Method, Services } from '../context';

/** Where an operation is called: on the base (`$op`), a type (`Type/$op`) or an instance (`Type/id/$op`). */
export type OperationLevel = 'system' | 'type' | 'instance';

/** What the route table knows of where an operation was called. */
export interface OperationTarget {
  level: OperationLevel;
  /** the resource type at type and instance level */
  type?: string;
  /** the resource id at instance level */
  id?: string;
  /** path segments after `$op` (an operation's own sub-resources, e.g. `$reindex/<job id>`) */
  rest: string[];
}

/**
 * A FHIR operation: one file under src/fhir/operations declares it, the route table calls it, the
 * CapabilityStatement lists it. Its permission check runs before the handler, on every level.
 */
export interface Operation {
  /** without the `$` */
  name: string;
  levels: OperationLevel[];
  /** the types it applies to at type and instance level (all when absent) */
  types?: string[];
  methods: Method[];
  /** whether it takes path segments after its name (`$reindex/<job id>`) */
  subPaths?: boolean;
  /** the OperationDefinition's canonical URL (`{base}` is this server's FHIR base) */
  definition: string;
  documentation?: string;
  /** whether the server offers it (e.g. $validate needs the validator) */
  available?: (svc: Services) => boolean;
  /** the decision that lets the caller run it, or throws the refusal (403); the handler checks what depends on the data */
  permission: (req: FhirRequest, target: OperationTarget) => Decision | void;
  handler: (svc: Services, req: FhirRequest, target: OperationTarget) => Promise<FhirResponse>;
}
