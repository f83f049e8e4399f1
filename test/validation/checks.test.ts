import { loadValidator } from '../../src/validation';
import { packageExamples } from '../../src/validation/packages';
import { testConfig } from '../helpers/engines';

/** Checks the HL7 validator makes, each shown on an example of the French packages and a mutation of it. */
const validator = loadValidator({ cacheDir: testConfig().validationCacheDir });
type R = Record<string, any>;
const examples = new Map(packageExamples().map((e) => [e.file, e.resource as R]));
const example = (file: string): R => structuredClone(examples.get(file)!);
const issues = (r: R, severity: string) => validator.validate(r, [], false).filter((i) => i.severity === severity);
const at = (r: R, severity: string) => issues(r, severity).map((i) => i.expression?.[0]);

describe('aggregation of references (ElementDefinition.type.aggregation)', () => {
  const PDSM = 'DocumentReference-exemple-pdsm-documentreference.json';
  /** the PDSm example with its author contained (and without its non-contained authenticator); its contained Practitioner without the example's own faults (profiles/README.md) */
  const containedAuthor = () => {
    const r = example(PDSM);
    delete r.contained[0].meta.lastUpdated;
    r.contained[0].meta.source = 'https://annuaire.esante.gouv.fr';
    r.author = [{ reference: '#practitioner-example' }];
    delete r.authenticator;
    return r;
  };

  it('PDSm wants author and authenticator contained: the example, which references them, is refused at each', () => {
    expect(at(example(PDSM), 'error')).toEqual(expect.arrayContaining(['DocumentReference.author[0].reference', 'DocumentReference.authenticator.reference']));
  });

  it('a contained author is accepted', () => {
    const errors = at(containedAuthor(), 'error');
    expect(errors.filter((e) => e?.startsWith('DocumentReference.author') || e?.startsWith('DocumentReference.authenticator'))).toEqual([]);
  });

  it('a reference to an absent contained resource is an error', () => {
    const r = containedAuthor();
    r.author = [{ reference: '#nobody' }];
    expect(at(r, 'error')).toContain('DocumentReference.author[0]');
  });

  it('a contained author is found in a resource that is a Bundle entry (its own %rootResource)', () => {
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: 'urn:uuid:5f0c1a4e-9d7b-4c2a-8e31-7a6b5c4d3e21', resource: containedAuthor() }] };
    expect(at(bundle, 'error').filter((e) => e?.startsWith('Bundle.entry[0].resource.author'))).toEqual([]);
  });
});

describe('attachment size and hash against the inline data', () => {
  const SIMPLIFIED = 'DocumentReference-PDSmSimplifiedExample.json';

  it('the PDSm simplified example states a size and a hash that are not those of its data: both are errors', () => {
    const errors = issues(example(SIMPLIFIED), 'error');
    expect(errors.map((i) => i.expression?.[0])).toEqual(['DocumentReference.content[0].attachment.size', 'DocumentReference.content[0].attachment.hash']);
  });

  it('with the size and SHA-1 of its data, it validates', () => {
    const r = example(SIMPLIFIED);
    r.content[0].attachment.size = 11; // "Hello World"
    r.content[0].attachment.hash = 'Ck1VqNd45QIvq3AZd8XYQLvEhtA=';
    expect(issues(r, 'error')).toEqual([]);
  });
});

describe('code displays', () => {
  const BP = 'Observation-ExampleMesFrObservationBP001.json';

  it('a display of the code system (any case) is accepted', () => {
    expect(at(example(BP), 'warning').filter((e) => e?.endsWith('.display'))).toEqual([]);
  });

  it('a display other than the code system gives for the code is a warning at the display', () => {
    const r = example(BP);
    r.interpretation[0].coding[0].display = 'High';
    const warnings = issues(r, 'warning').filter((i) => i.expression?.[0] === 'Observation.interpretation[0].coding[0].display');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].diagnostics).toContain('"High" is not the display of http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation#L');
    expect(issues(r, 'error')).toEqual([]);
  });
});
