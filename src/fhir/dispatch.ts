import type { FhirRequest, FhirResponse, Services } from './context';
import { route } from './routes';

/**
 * One FHIR request, from the HTTP layer or a Bundle entry, through the route table
 * (src/fhir/routes.ts).
 */
export async function dispatch(svc: Services, req: FhirRequest): Promise<FhirResponse> {
  return route(svc, req);
}
