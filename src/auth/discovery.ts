import { CLIENT_ASSERTION_ALGS, SIGNING_ALGS } from './keys';
import { AUTH_METHODS } from './registry';

/** The URLs of the authorization server's endpoints, under its issuer. */
export interface Endpoints {
  authorize: string;
  token: string;
  introspect: string;
  revoke: string;
  jwks: string;
  register: string;
  manage: string;
  launch: string;
}

export function endpointsOf(issuer: string): Endpoints {
  return {
    authorize: `${issuer}/authorize`,
    token: `${issuer}/token`,
    introspect: `${issuer}/introspect`,
    revoke: `${issuer}/revoke`,
    jwks: `${issuer}/jwks`,
    register: `${issuer}/admin/clients`,
    manage: `${issuer}/admin/clients`,
    launch: `${issuer}/launch`,
  };
}

/** The SMART configuration (`/.well-known/smart-configuration` beside the FHIR base): what an app needs to find and use this server. */
export function smartConfiguration(issuer: string, endpoints: Endpoints): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: endpoints.jwks,
    authorization_endpoint: endpoints.authorize,
    token_endpoint: endpoints.token,
    introspection_endpoint: endpoints.introspect,
    revocation_endpoint: endpoints.revoke,
    registration_endpoint: endpoints.register,
    management_endpoint: endpoints.manage,
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGS,
    id_token_signing_alg_values_supported: SIGNING_ALGS,
    scopes_supported: ['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access', 'online_access', 'patient/*.cruds', 'patient/*.rs', 'patient/*.read', 'user/*.cruds', 'user/*.rs', 'user/*.read', 'user/*.write', 'system/*.cruds', 'system/*.rs', 'system/*.read'],
    capabilities: [
      'launch-standalone',
      'launch-ehr',
      'client-public',
      'client-confidential-symmetric',
      'client-confidential-asymmetric',
      'context-standalone-patient',
      'context-ehr-patient',
      'permission-patient',
      'permission-user',
      'permission-offline',
      'permission-online',
      'permission-v1',
      'permission-v2',
      'sso-openid-connect',
    ],
  };
}
