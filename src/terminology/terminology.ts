import type { CodeSystemDef, Concept, ExpansionContains, ValueSetDef, ValueSetInclude } from './definitions';

/**
 * Value sets and code systems loaded from the packages: expansions computed locally, once per value
 * set, and code membership. Where a value set draws on a code system that is not loaded (LOINC,
 * SNOMED CT, UCUM, missing French NOS files) the expansion is marked incomplete for that system and
 * a check answers "unknown", never a guess.
 */

export interface Expansion {
  url: string;
  /** system → codes known to be in the value set */
  codes: Map<string, Set<string>>;
  /** systems whose content in this value set could not be enumerated, with why */
  incomplete: Map<string, string>;
  /** a reason when a part with no system (an unloadable imported value set) is missing */
  unknownPart?: string;
}

export type CodeCheck = { result: 'valid' } | { result: 'invalid' } | { result: 'unknown'; reason: string };

/**
 * A code looked up in its code system: `defined` (with its displays), `absent` from a system held in
 * full, `notListed` by an older single-file build of the system (a newer one may define it), or
 * `unknown` when the system is not held in full here.
 */
export type CodeLookup = { result: 'defined'; displays: string[] } | { result: 'absent' } | { result: 'notListed'; reason: string } | { result: 'unknown' };

const stripVersion = (url: string) => url.split('|')[0];

interface FlatCodeSystem {
  def: CodeSystemDef;
  /** code → parent codes */
  parents: Map<string, string[]>;
  /** code → property code → values */
  props: Map<string, Map<string, string[]>>;
  /** code → display and designations */
  displays: Map<string, string[]>;
}

export class Terminology {
  private readonly valueSets = new Map<string, ValueSetDef>();
  private readonly codeSystems = new Map<string, CodeSystemDef>();
  private readonly flat = new Map<string, FlatCodeSystem>();
  private readonly expansions = new Map<string, Expansion | null>();
  /** expansions by value set reference as written (url|version) */
  private readonly byRef = new Map<string, Expansion | undefined>();

  /**
   * @param partialPackages packages that are single files of a newer terminology release (older
   * builds): a code of a system they do not list is reported as unknown rather than invalid
   */
  constructor(
    valueSets: ValueSetDef[],
    codeSystems: CodeSystemDef[],
    private readonly partialPackages: ReadonlySet<string> = new Set(),
  ) {
    for (const vs of valueSets) if (!this.valueSets.has(vs.url)) this.valueSets.set(vs.url, vs);
    for (const cs of codeSystems) if (!this.codeSystems.has(cs.url)) this.codeSystems.set(cs.url, cs);
  }

  hasValueSet(url: string): boolean {
    return this.valueSets.has(stripVersion(url));
  }

  hasCodeSystem(url: string): boolean {
    return this.codeSystems.has(url);
  }

  private flatten(system: string): FlatCodeSystem | undefined {
    let f = this.flat.get(system);
    if (f) return f;
    const def = this.codeSystems.get(system);
    if (!def) return undefined;
    f = { def, parents: new Map(), props: new Map(), displays: new Map() };
    const walk = (cs: Concept[] | undefined, parent: string | undefined) => {
      for (const c of cs ?? []) {
        const ps = f!.parents.get(c.code) ?? [];
        if (parent) ps.push(parent);
        f!.parents.set(c.code, ps);
        if (c.display) f!.displays.set(c.code, c.display);
        if (c.property) {
          const m = f!.props.get(c.code) ?? new Map<string, string[]>();
          for (const p of c.property) {
            const v = p.valueCode ?? p.valueString ?? (p.valueBoolean !== undefined ? String(p.valueBoolean) : undefined);
            if (v === undefined) continue;
            if (p.code === 'parent' || p.code === 'subsumedBy') ps.push(v);
            m.set(p.code, [...(m.get(p.code) ?? []), v]);
          }
          f!.props.set(c.code, m);
        }
        walk(c.concept, c.code);
      }
    };
    walk(def.concept, undefined);
    this.flat.set(system, f);
    return f;
  }

  private isComplete(cs: FlatCodeSystem): boolean {
    return cs.def.content === undefined || cs.def.content === 'complete';
  }

  /** Is `code` equal to or a descendant of `ancestor`? */
  private subsumes(cs: FlatCodeSystem, ancestor: string, code: string, seen = new Set<string>()): boolean {
    if (code === ancestor) return true;
    if (seen.has(code)) return false;
    seen.add(code);
    return (cs.parents.get(code) ?? []).some((p) => this.subsumes(cs, ancestor, p, seen));
  }

  /**
   * The codes of `system` that `code` subsumes (`below`: itself and its descendants) or that
   * subsume it (`above`: itself and its ancestors), from the loaded code system's hierarchy; a
   * string saying why when the system is not loaded completely.
   */
  hierarchy(system: string, code: string, direction: 'above' | 'below'): string[] | string {
    const cs = this.flatten(system);
    if (!cs) return `the code system ${system} is not available on this server`;
    if (!this.isComplete(cs)) return `the code system ${system} is only present as a ${cs.def.content ?? 'partial'} copy`;
    if (!cs.parents.has(code)) return `${code} is not a code of ${system}`;
    if (direction === 'below') return [...cs.parents.keys()].filter((c) => this.subsumes(cs, code, c));
    return [...cs.parents.keys()].filter((c) => this.subsumes(cs, c, code));
  }

  /** The codes of one include/exclude part, or the reason they cannot be listed. */
  private part(inc: ValueSetInclude, depth: number): { system?: string; codes?: Set<string>; incomplete?: string; sub?: Expansion[] } {
    const subs: Expansion[] = [];
    for (const ref of inc.valueSet ?? []) {
      const e = this.expandInner(stripVersion(ref), depth + 1);
      if (!e) return { system: inc.system, incomplete: `the value set ${ref} is not available` };
      subs.push(e);
    }
    if (!inc.system) return { sub: subs };
    const system = inc.system;
    if (inc.concept?.length && !inc.filter?.length) return { system, codes: new Set(inc.concept.map((c) => c.code)), sub: subs };
    const cs = this.flatten(system);
    if (!cs) return { system, incomplete: `the code system ${system} is not available on this server` };
    if (!this.isComplete(cs)) return { system, incomplete: `the code system ${system} is only present as a ${cs.def.content ?? 'partial'} copy` };
    let codes = [...cs.parents.keys()];
    if (inc.concept?.length) codes = codes.filter((c) => inc.concept!.some((x) => x.code === c));
    for (const f of inc.filter ?? []) {
      if ((f.op === 'is-a' || f.op === 'descendent-of') && f.property === 'concept') {
        codes = codes.filter((c) => this.subsumes(cs, f.value, c) && (f.op === 'is-a' || c !== f.value));
      } else if (f.op === 'is-not-a' && f.property === 'concept') {
        codes = codes.filter((c) => !this.subsumes(cs, f.value, c));
      } else if (f.op === 'in' && f.property === 'concept') {
        const set = new Set(f.value.split(',').map((s) => s.trim()));
        codes = codes.filter((c) => set.has(c));
      } else if (f.op === '=') {
        codes = codes.filter((c) => (f.property === 'code' || f.property === 'concept' ? c === f.value : (cs.props.get(c)?.get(f.property) ?? []).includes(f.value)));
      } else if (f.op === 'regex' && (f.property === 'code' || f.property === 'concept')) {
        const re = new RegExp(`^(?:${f.value})$`);
        codes = codes.filter((c) => re.test(c));
      } else if (f.op === 'exists') {
        codes = codes.filter((c) => (cs.props.get(c)?.has(f.property) ?? false) === (f.value === 'true'));
      } else {
        return { system, incomplete: `the filter ${f.property} ${f.op} ${f.value} on ${system} is not supported locally` };
      }
    }
    return { system, codes: new Set(codes), sub: subs };
  }

  /** The expansion of a value set (cached), or undefined when the value set is not loaded. */
  expand(url: string): Expansion | undefined {
    // by the reference as written (with its |version): no string splitting on the hot path
    let e = this.byRef.get(url);
    if (e === undefined && !this.byRef.has(url)) {
      e = this.expandInner(stripVersion(url), 0);
      this.byRef.set(url, e);
    }
    return e;
  }

  private expandInner(url: string, depth: number): Expansion | undefined {
    if (this.expansions.has(url)) return this.expansions.get(url) ?? undefined;
    const vs = this.valueSets.get(url);
    if (!vs || depth > 20) return undefined;
    this.expansions.set(url, null); // cycle guard
    const exp: Expansion = { url, codes: new Map(), incomplete: new Map() };
    const add = (system: string, code: string) => {
      let s = exp.codes.get(system);
      if (!s) exp.codes.set(system, (s = new Set()));
      s.add(code);
    };
    if (vs.compose?.include?.length) {
      for (const inc of vs.compose.include) {
        const p = this.part(inc, depth);
        if (p.incomplete) {
          if (p.system) exp.incomplete.set(p.system, p.incomplete);
          else exp.unknownPart = p.incomplete;
          continue;
        }
        if (p.sub?.length) {
          // codes in every imported value set (and in this system part when there is one)
          const [first, ...rest] = p.sub;
          for (const [sys, codes] of first.codes) {
            if (p.system && sys !== p.system) continue;
            for (const c of codes) if (rest.every((r) => r.codes.get(sys)?.has(c)) && (!p.codes || p.codes.has(c))) add(sys, c);
          }
          for (const s of p.sub) {
            for (const [sys, why] of s.incomplete) exp.incomplete.set(sys, why);
            if (s.unknownPart) exp.unknownPart = s.unknownPart;
          }
        } else if (p.system && p.codes) {
          for (const c of p.codes) add(p.system, c);
        }
      }
      for (const ex of vs.compose.exclude ?? []) {
        const p = this.part(ex, depth);
        if (p.system && p.codes) for (const c of p.codes) exp.codes.get(p.system)?.delete(c);
      }
    } else if (vs.expansion?.contains) {
      const walk = (cs: ExpansionContains[]) => {
        for (const c of cs) {
          if (c.system && c.code) add(c.system, c.code);
          if (c.contains) walk(c.contains);
        }
      };
      walk(vs.expansion.contains);
    } else {
      exp.unknownPart = `the value set ${url} has no definition that can be expanded`;
    }
    this.expansions.set(url, exp);
    return exp;
  }

  /** Is (system, code) in the value set? With no system, any system of the value set matches. */
  check(valueSetUrl: string, system: string | undefined, code: string): CodeCheck {
    const exp = this.expand(valueSetUrl);
    if (!exp) return { result: 'unknown', reason: `the value set ${valueSetUrl} is not available on this server` };
    if (system === undefined) {
      for (const codes of exp.codes.values()) if (codes.has(code)) return { result: 'valid' };
      if (exp.incomplete.size) return { result: 'unknown', reason: [...exp.incomplete.values()][0] };
      if (exp.unknownPart) return { result: 'unknown', reason: exp.unknownPart };
      return { result: 'invalid' };
    }
    if (exp.codes.get(system)?.has(code)) return { result: 'valid' };
    const why = exp.incomplete.get(system);
    if (why) return { result: 'unknown', reason: why };
    if (exp.unknownPart) return { result: 'unknown', reason: exp.unknownPart };
    const vs = this.valueSets.get(exp.url);
    if (vs && this.partialPackages.has(vs.package)) {
      // an older build: the value set as the profile means it (its current version) may hold the code
      const what = exp.codes.has(system) ? `the code ${code}` : `the system ${system}`;
      return { result: 'unknown', reason: `the local copy of ${vs.url} (version ${vs.version ?? '?'}) is an older single-file build that does not list ${what}` };
    }
    return { result: 'invalid' };
  }

  /** The code in its code system, when the server holds that system in full. */
  lookup(system: string, code: string): CodeLookup {
    const cs = this.flatten(system);
    if (!cs || !this.isComplete(cs)) return { result: 'unknown' };
    if (cs.parents.has(code)) return { result: 'defined', displays: cs.displays.get(code) ?? [] };
    if (this.partialPackages.has(cs.def.package)) return { result: 'notListed', reason: `the local copy of ${system} (version ${cs.def.version ?? '?'}) is an older single-file build that does not list ${code}` };
    return { result: 'absent' };
  }
}
