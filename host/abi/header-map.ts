/**
 * An ordered, lower-cased header multimap, as Envoy keeps it.
 *
 * Names and values are "byte strings": JS strings whose char codes are the raw
 * bytes (latin1). That is what node:http hands us, and it round-trips any byte
 * sequence into and out of the guest without re-encoding.
 */
export class HeaderMap {
  /** Flat [name0, value0, name1, value1, ...]; names lower-case. */
  readonly flat: string[];

  constructor(flat: string[] = []) {
    this.flat = flat;
  }

  /** Build from pairs; names are lower-cased. */
  static fromPairs(pairs: Iterable<readonly [string, string]>): HeaderMap {
    const flat: string[] = [];
    for (const [k, v] of pairs) flat.push(k.toLowerCase(), v);
    return new HeaderMap(flat);
  }

  /** Build from node's rawHeaders ([name, value, ...] as received). */
  static fromRaw(raw: readonly string[]): HeaderMap {
    const flat = new Array<string>(raw.length);
    for (let i = 0; i < raw.length; i += 2) {
      flat[i] = raw[i]!.toLowerCase();
      flat[i + 1] = raw[i + 1]!;
    }
    return new HeaderMap(flat);
  }

  get count(): number {
    return this.flat.length >> 1;
  }

  /** Envoy's byteSize(): the sum of name and value lengths. */
  get byteSize(): number {
    let n = 0;
    for (let i = 0; i < this.flat.length; i++) n += this.flat[i]!.length;
    return n;
  }

  /** First value of `name` (lower-case), as Envoy's get_header_map_value returns. */
  get(name: string): string | undefined {
    const f = this.flat;
    for (let i = 0; i < f.length; i += 2) if (f[i] === name) return f[i + 1];
    return undefined;
  }

  /** All values of `name`, in order. */
  getAll(name: string): string[] {
    const out: string[] = [];
    const f = this.flat;
    for (let i = 0; i < f.length; i += 2) if (f[i] === name) out.push(f[i + 1]!);
    return out;
  }

  add(name: string, value: string): void {
    this.flat.push(name, value);
  }

  /** Set the first occurrence in place, drop the others; add when absent. */
  replace(name: string, value: string): void {
    const f = this.flat;
    let found = false;
    for (let i = 0; i < f.length; ) {
      if (f[i] === name) {
        if (!found) {
          f[i + 1] = value;
          found = true;
          i += 2;
        } else f.splice(i, 2);
      } else i += 2;
    }
    if (!found) f.push(name, value);
  }

  remove(name: string): void {
    const f = this.flat;
    for (let i = 0; i < f.length; ) {
      if (f[i] === name) f.splice(i, 2);
      else i += 2;
    }
  }

  /** Replace the whole content (set_header_map_pairs). */
  setAll(flat: readonly string[]): void {
    this.flat.length = 0;
    for (let i = 0; i < flat.length; i++) this.flat.push(flat[i]!);
  }

  *pairs(): IterableIterator<[string, string]> {
    const f = this.flat;
    for (let i = 0; i < f.length; i += 2) yield [f[i]!, f[i + 1]!];
  }

  toPairs(): Array<[string, string]> {
    return [...this.pairs()];
  }
}
