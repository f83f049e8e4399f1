import type { CapabilityStatement, CapabilityStatementRestResource } from 'fhir/r4';
import type { Services } from './context';
import { ESTIMATE_LIMIT } from '../search/plan';
import { OPERATIONS, type Operation } from './operations';

const cache = new Map<string, CapabilityStatement>();

import fs from 'node:fs';
import path from 'node:path';

/** The package version, from the package.json above this file (in src/ or in dist/src/). */
function packageVersion(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return '0.0.0';
}
const VERSION = packageVersion();

/** The CapabilityStatement, generated from what the server implements: types, interactions, parameters. */
export function capabilityStatement(svc: Services, baseUrl: string): CapabilityStatement {
  const key = `${baseUrl}|${svc.store.supportsTransactions}|${svc.registry.version}|${svc.oauthUris?.token}|${svc.validator?.required.mode}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const referenceParams = (type: string) => [...svc.registry.forType(type).values()].filter((p) => p.searchable && p.type === 'reference');
  const revIncludes = new Map<string, string[]>();
  for (const source of svc.resourceTypes) {
    for (const p of referenceParams(source)) for (const target of p.targets) revIncludes.set(target, [...(revIncludes.get(target) ?? []), `${source}:${p.code}`]);
  }
  const offered = OPERATIONS.filter((o) => o.available?.(svc) ?? true);
  const named = (o: Operation) => ({ name: o.name, definition: o.definition.replace('{base}', baseUrl) });
  const described = (o: Operation) => ({ ...named(o), ...(o.documentation ? { documentation: o.documentation } : {}) });
  const operations = (type: string) => offered.filter((o) => (o.levels.includes('type') || o.levels.includes('instance')) && (!o.types || o.types.includes(type))).map(named);
  const required = svc.validator?.required.describe() ?? {};
  const resources: CapabilityStatementRestResource[] = [...svc.resourceTypes].map((type) => ({
    type,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    // the profiles a write of this type must meet (besides those it declares)
    ...(required[type]?.length ? { supportedProfile: required[type] } : {}),
    interaction: (['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'] as const).map((code) => ({ code })),
    versioning: 'versioned',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'full-support',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    searchInclude: ['*', ...referenceParams(type).map((p) => `${type}:${p.code}`)],
    searchRevInclude: ['*', ...(revIncludes.get(type) ?? []).sort()],
    ...(operations(type).length ? { operation: operations(type) } : {}),
    searchParam: [
      { name: '_id', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id', type: 'token' },
      { name: '_lastUpdated', definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated', type: 'date' },
      ...[...svc.registry.forType(type).values()]
        .filter((p) => p.searchable)
        .sort((a, b) => a.code.localeCompare(b.code))
        .map((p) => ({ name: p.code, definition: p.url, type: p.type })),
    ],
  }));
  const cs: CapabilityStatement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: svc.startedAt.toISOString(),
    publisher: 'espace-sante-fhir',
    kind: 'instance',
    software: { name: 'espace-sante-fhir', version: VERSION },
    implementation: { description: `espace-sante-fhir on its ${svc.store.engine} store`, url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['json'],
    ...(svc.validator ? { implementationGuide: svc.validator.engine.packages.filter((p) => p.guide).map((p) => `${p.guide}|${p.version}`) } : {}),
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        documentation: `Bundle.total of a search is given when it is asked for: _total=accurate (every match counted), _total=estimate (counted up to ${ESTIMATE_LIMIT}; no total beyond), _count=0 or _summary=count; and on a first page that holds every match. Otherwise it is absent (_total=none is the default): counting every match of a large search on every first page costs more than the page.`,
        resource: resources,
        interaction: [...(svc.store.supportsTransactions ? [{ code: 'transaction' as const }] : []), { code: 'batch' }, { code: 'search-system' }, { code: 'history-system' }],
        searchParam: [
          { name: '_id', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id', type: 'token' },
          { name: '_lastUpdated', definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated', type: 'date' },
          ...[...svc.registry.forType('Patient').values()]
            .filter((p) => p.searchable && p.url.startsWith('http://hl7.org/fhir/SearchParameter/Resource-'))
            .map((p) => ({ name: p.code, definition: p.url, type: p.type })),
        ],
        operation: offered.filter((o) => o.levels.includes('system')).map(described),
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
        ...(svc.oauthUris ? { security: smartSecurity(svc.oauthUris) } : {}),
      },
    ],
  };
  cache.set(key, cs);
  return cs;
}

/** The SMART on FHIR security section: the service and the OAuth endpoints (SMART App Launch, oauth-uris extension). */
function smartSecurity(uris: NonNullable<Services['oauthUris']>): NonNullable<CapabilityStatement['rest']>[number]['security'] {
  return {
    cors: true,
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' }], text: 'OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)' }],
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: Object.entries(uris)
          .filter(([, v]) => v)
          .map(([k, v]) => ({ url: k, valueUri: v })),
      },
    ],
    description: 'Every interaction but metadata needs a bearer token from this server (SMART App Launch 2.x, SMART Backend Services); see .well-known/smart-configuration',
  };
}
