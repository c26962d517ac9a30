// Punycode (RFC 3492) for single DNS labels. RFC 7622 §3.2 needs it twice: an A-label in a
// domainpart has to become its U-label so that "xn--bcher-kva.example" and "bücher.example" compare
// equal, and a label's 63-octet DNS limit is measured on its A-label form (RFC 5890 §2.3.2.1).
// Pure arithmetic on code points; no "xn--" prefix handling here.

const BASE = 36;
const TMIN = 1;
const TMAX = 26;
const SKEW = 38;
const DAMP = 700;
const INITIAL_BIAS = 72;
const INITIAL_N = 0x80;
// RFC 3492 §6.4: implementations must detect overflow; 32-bit signed is the reference bound.
const MAXINT = 0x7fffffff;

// RFC 3492 §6.1
function adapt(delta: number, numPoints: number, firstTime: boolean): number {
  let d = firstTime ? Math.floor(delta / DAMP) : Math.floor(delta / 2);
  d += Math.floor(d / numPoints);
  let k = 0;
  while (d > ((BASE - TMIN) * TMAX) >> 1) {
    d = Math.floor(d / (BASE - TMIN));
    k += BASE;
  }
  return k + Math.floor(((BASE - TMIN + 1) * d) / (d + SKEW));
}

function threshold(k: number, bias: number): number {
  return k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
}

// Lowercase digits only: A-labels are compared in lowercase (RFC 5891 §5.4).
function encodeDigit(d: number): string {
  return String.fromCharCode(d < 26 ? 0x61 + d : 0x16 + d);
}

function decodeDigit(cu: number): number {
  if (cu >= 0x30 && cu <= 0x39) return cu - 0x16;
  if (cu >= 0x41 && cu <= 0x5a) return cu - 0x41;
  if (cu >= 0x61 && cu <= 0x7a) return cu - 0x61;
  return BASE;
}

/** RFC 3492 §6.3 encoding of one label; null on overflow. */
export function punycodeEncode(label: string): string | null {
  const cps = Array.from(label, (c) => c.codePointAt(0) ?? 0);
  let output = cps
    .filter((c) => c < 0x80)
    .map((c) => String.fromCharCode(c))
    .join("");
  const basic = output.length;
  let handled = basic;
  if (basic > 0) output += "-";
  let n = INITIAL_N;
  let delta = 0;
  let bias = INITIAL_BIAS;
  while (handled < cps.length) {
    let m = MAXINT;
    for (const c of cps) if (c >= n && c < m) m = c;
    if (m - n > Math.floor((MAXINT - delta) / (handled + 1))) return null;
    delta += (m - n) * (handled + 1);
    n = m;
    for (const c of cps) {
      if (c < n && ++delta > MAXINT) return null;
      if (c !== n) continue;
      let q = delta;
      for (let k = BASE; ; k += BASE) {
        const t = threshold(k, bias);
        if (q < t) break;
        output += encodeDigit(t + ((q - t) % (BASE - t)));
        q = Math.floor((q - t) / (BASE - t));
      }
      output += encodeDigit(q);
      bias = adapt(delta, handled + 1, handled === basic);
      delta = 0;
      handled++;
    }
    delta++;
    n++;
  }
  return output;
}

/** RFC 3492 §6.2 decoding of one label; null when the input is not valid Punycode. */
export function punycodeDecode(input: string): string | null {
  const out: number[] = [];
  const delimiter = input.lastIndexOf("-");
  for (let j = 0; j < delimiter; j++) {
    const cu = input.charCodeAt(j);
    if (cu >= 0x80) return null;
    out.push(cu);
  }
  let n = INITIAL_N;
  let i = 0;
  let bias = INITIAL_BIAS;
  for (let pos = delimiter > 0 ? delimiter + 1 : 0; pos < input.length; ) {
    const oldi = i;
    let w = 1;
    for (let k = BASE; ; k += BASE) {
      if (pos >= input.length) return null;
      const digit = decodeDigit(input.charCodeAt(pos++));
      if (digit >= BASE || digit > Math.floor((MAXINT - i) / w)) return null;
      i += digit * w;
      const t = threshold(k, bias);
      if (digit < t) break;
      if (w > Math.floor(MAXINT / (BASE - t))) return null;
      w *= BASE - t;
    }
    const length = out.length + 1;
    bias = adapt(i - oldi, length, oldi === 0);
    if (Math.floor(i / length) > MAXINT - n) return null;
    n += Math.floor(i / length);
    i %= length;
    // A decoded surrogate or out-of-range value cannot be a Unicode scalar value.
    if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return null;
    out.splice(i, 0, n);
    i++;
  }
  return out.map((c) => String.fromCodePoint(c)).join("");
}
