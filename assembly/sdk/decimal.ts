// Integers as decimal text for messages: the same text as toString() on an
// integer, without the standard library's any-radix formatting behind it (its
// radix check, abort message and digit tables: about 700 bytes of module).

/** `v` in decimal, as `v.toString()` writes it (any integer type up to i64; u64: decimalU). */
export function decimal(v: i64): string {
  // |v| as u64, also right for i64.MIN_VALUE
  return digits(v < 0 ? <u64>(-(v + 1)) + 1 : <u64>v, v < 0);
}

/** `v` in decimal, as `v.toString()` writes it. */
export function decimalU(v: u64): string {
  return digits(v, false);
}

function digits(u: u64, negative: bool): string {
  let n = 1;
  for (let t = u; t >= 10; t /= 10) n++;
  const sign = negative ? 1 : 0;
  const out = changetype<string>(__new(<usize>(n + sign) << 1, idof<string>()));
  const p = changetype<usize>(out);
  if (negative) store<u16>(p, 0x2d);
  for (let i = n + sign - 1; i >= sign; i--) {
    store<u16>(p + (<usize>i << 1), <u16>(0x30 + <i32>(u % 10)));
    u /= 10;
  }
  return out;
}
