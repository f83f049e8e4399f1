import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { loadDefinitions } from '../../src/validation/definitions';
import { repoRoot } from '../../src/validation/packages';

/** The compiled validation definitions: built once (by npm install), shared by every data directory. */
test('every data directory shares one cache of the definitions, which VALIDATION_CACHE_DIR still chooses', () => {
  const shared = path.join(repoRoot(), 'node_modules', '.cache', 'espace-sante-fhir');
  expect([loadConfig({ DATA_DIR: '/srv/a' }).validationCacheDir, loadConfig({ DATA_DIR: '/srv/b' }).validationCacheDir]).toEqual([shared, shared]);
  expect(loadConfig({ DATA_DIR: '/srv/a', VALIDATION_CACHE_DIR: '/var/cache/esf' }).validationCacheDir).toBe('/var/cache/esf');
});

test('a cache that cannot be written (a read-only install) does not stop the definitions from loading', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'esf-cache-'));
  try {
    // a directory that cannot be made, whoever runs the test (root included)
    fs.writeFileSync(path.join(root, 'file'), '');
    const { definitions, fromCache } = loadDefinitions(path.join(root, 'file', 'cache'));
    expect(fromCache).toBe(false);
    expect(definitions.structureDefinitions.find((sd) => sd.url === 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient')?.type).toBe('Patient');
    expect(fs.readdirSync(root)).toEqual(['file']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}, 60_000);
