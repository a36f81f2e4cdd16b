// Plugin configuration checking: typed getters over a parsed JSON object that
// collect one message per problem, naming the field, e.g.
//   "http-log: config.queue.max_batch_size must be an integer between 1 and 1000000 (found 0)"
// Each getter returns the default when the value is absent, null (Kong's
// "not set") or invalid, so all problems are found in one pass.
import { JSON } from "assemblyscript-json/assembly";
import { decimal } from "../sdk/decimal";
import { jsonText } from "./json";

export class ConfigChecker {
  errors: string[] = [];

  /** `plugin` prefixes every message ("http-log"). */
  constructor(public plugin: string) {}

  fail(path: string, why: string, found: JSON.Value | null): void {
    let msg = this.plugin + ": config." + path + " " + why;
    if (found !== null) {
      let text = jsonText(found);
      if (text.length > 80) text = text.substring(0, 77) + "...";
      msg += " (found " + text + ")";
    }
    this.errors.push(msg);
  }

  /** The value of `key`, or null when absent or JSON null. */
  present(obj: JSON.Obj, key: string): JSON.Value | null {
    const v = obj.get(key);
    if (v === null || v.isNull) return null;
    return v;
  }

  str(obj: JSON.Obj, key: string, path: string, def: string): string {
    const v = this.present(obj, key);
    if (v === null) return def;
    if (!v.isString) {
      this.fail(path, "must be a string", v);
      return def;
    }
    return (<JSON.Str>v).valueOf();
  }

  oneOf(obj: JSON.Obj, key: string, path: string, allowed: string[], def: string): string {
    const v = this.present(obj, key);
    if (v === null) return def;
    if (v.isString) {
      const s = (<JSON.Str>v).valueOf();
      if (allowed.includes(s)) return s;
    }
    this.fail(path, "must be one of: " + allowed.join(", "), v);
    return def;
  }

  bool(obj: JSON.Obj, key: string, path: string, def: bool): bool {
    const v = this.present(obj, key);
    if (v === null) return def;
    if (!v.isBool) {
      this.fail(path, "must be a boolean", v);
      return def;
    }
    return (<JSON.Bool>v).valueOf();
  }

  /** An integer in [min, max]; a float with an integral value is accepted. */
  integer(obj: JSON.Obj, key: string, path: string, min: i64, max: i64, def: i64): i64 {
    const v = this.present(obj, key);
    if (v === null) return def;
    let n: i64 = 0;
    let ok = false;
    if (v.isInteger) {
      n = (<JSON.Integer>v).valueOf();
      ok = true;
    } else if (v.isFloat) {
      const f = (<JSON.Float>v).valueOf();
      if (f == Math.floor(f) && Math.abs(f) < 9e15) {
        n = <i64>f;
        ok = true;
      }
    }
    if (!ok || n < min || n > max) {
      this.fail(path, "must be an integer between " + decimal(min) + " and " + decimal(max), v);
      return def;
    }
    return n;
  }

  /** A number in [min, max] (max < min: no upper bound). */
  number(obj: JSON.Obj, key: string, path: string, min: f64, max: f64, def: f64): f64 {
    const v = this.present(obj, key);
    if (v === null) return def;
    let f: f64 = 0;
    if (v.isInteger) f = <f64>(<JSON.Integer>v).valueOf();
    else if (v.isFloat) f = (<JSON.Float>v).valueOf();
    else {
      this.fail(path, "must be a number", v);
      return def;
    }
    if (f < min || (max >= min && f > max)) {
      this.fail(path, max >= min ? "must be a number between " + fmt(min) + " and " + fmt(max) : "must be a number >= " + fmt(min), v);
      return def;
    }
    return f;
  }

  object(obj: JSON.Obj, key: string, path: string): JSON.Obj | null {
    const v = this.present(obj, key);
    if (v === null) return null;
    if (!v.isObj) {
      this.fail(path, "must be an object", v);
      return null;
    }
    return <JSON.Obj>v;
  }

  /** Names in `obj` that are not in `known` (Kong refuses unknown fields). */
  unknownKeys(obj: JSON.Obj, known: string[]): string[] {
    const out = new Array<string>();
    const keys = obj.keys;
    for (let i = 0; i < keys.length; i++) if (!known.includes(keys[i])) out.push(keys[i]);
    return out;
  }
}

function fmt(f: f64): string {
  return f == Math.floor(f) && Math.abs(f) < 1e15 ? decimal(<i64>f) : f.toString();
}
