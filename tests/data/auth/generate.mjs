// Generates tests/data/auth/tokens.json: real NextAuth v4 and Auth.js v5 session
// tokens, produced and round-tripped by the libraries' own encode/decode.
//
// Usage (in this folder):
//   npm install next-auth@4 @auth/core --legacy-peer-deps
//   node generate.mjs
//
// Versions used to produce the committed tokens.json (pinned in package.json):
//   next-auth@4.24.15 (bundles jose@4.15.9), @auth/core@0.41.3 (jose@6.2.18),
//   @panva/hkdf@1.2.1, Node v20.20.2.
//
// Tokens contain random IVs / jti and absolute iat/exp, so each run produces
// different tokens; the "valid" ones use maxAge = 100 years.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as v5jwt from "@auth/core/jwt";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const v4jwt = require("next-auth/jwt");
// next-auth's SessionStore is not in the package "exports" map; load the file directly.
const nextAuthJwtDir = path.dirname(require.resolve("next-auth/jwt"));
const { SessionStore } = require(path.join(nextAuthJwtDir, "..", "core", "lib", "cookie.js"));

const pkgVersion = (name) => {
  // package.json is not exported either; walk up from the resolved entry point.
  let dir = path.dirname(require.resolve(name === "next-auth" ? "next-auth/jwt" : name));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
      if (pkg.name === name) return pkg.version;
    } catch {}
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find version of ${name}`);
    dir = up;
  }
};
const NEXT_AUTH_VERSION = pkgVersion("next-auth");
const AUTH_CORE_VERSION = pkgVersion("@auth/core");

const SECRET = "test-secret-do-not-use-in-production-0123456789";
const OTHER_SECRET = "other-test-secret-do-not-use-in-production-9876543210";
const HUNDRED_YEARS = 100 * 365 * 24 * 60 * 60;

const baseClaims = { name: "Ada Admin", email: "ada@example.com", picture: "https://example.com/avatars/ada.png", sub: "user_admin_1" };
// Deterministic 6000-char data URL so the v4 token exceeds 4 KB and gets chunked.
const prefix = "data:image/png;base64,";
const bigPicture = prefix + Buffer.alloc(6000, "fixture-bytes-").toString("base64").slice(0, 6000 - prefix.length);

const headerOf = (jwe) => JSON.parse(Buffer.from(jwe.split(".")[0], "base64url").toString("utf8"));

// Run fn with the global clock fixed at epochSec (both jose versions read `new Date()`).
async function withClock(epochSec, fn) {
  const RealDate = globalThis.Date;
  class FakeDate extends RealDate {
    constructor(...a) { if (a.length === 0) super(epochSec * 1000); else super(...a); }
    static now() { return epochSec * 1000; }
  }
  globalThis.Date = FakeDate;
  try { return await fn(); } finally { globalThis.Date = RealDate; }
}
const errMsg = async (p) => { try { await p; return null; } catch (e) { return `${e.name}: ${e.message}`; } };

const cases = [];
async function addCase({ name, v, cookieName, claims, maxAge, encSecret, expect }) {
  const lib = v === 4 ? v4jwt : v5jwt;
  const salt = v === 4 ? undefined : cookieName; // v4 session tokens use salt "" (default)
  const token = await lib.encode({ token: claims, secret: encSecret, maxAge, ...(salt ? { salt } : {}) });
  const dec = (secret) => lib.decode({ token, secret, ...(salt ? { salt } : {}) });

  const entry = {
    name,
    library: v === 4 ? `next-auth@${NEXT_AUTH_VERSION}` : `@auth/core@${AUTH_CORE_VERSION}`,
    cookieName,
    ...(salt ? { salt } : {}),
    maxAge,
    secretUsed: encSecret === SECRET ? "secret" : "otherSecret",
    header: headerOf(token),
    tokenLength: token.length,
    token,
  };

  // Decode with the library's own decode against `secret` (what the consumer will use).
  const decodeError = await errMsg(dec(SECRET));
  let claimsOut;
  if (expect === "valid") {
    if (decodeError) throw new Error(`${name}: valid token failed to decode: ${decodeError}`);
    claimsOut = await dec(SECRET);
  } else if (expect === "expired") {
    if (!decodeError) throw new Error(`${name}: expired token decoded`);
    // Prove round trip with the library's decode, with the clock set just after iat.
    const iat = Math.floor(Date.now() / 1000);
    claimsOut = await withClock(iat + maxAge - 60, () => dec(SECRET));
    entry.claimsNote = "library decode rejects this token now (see decodeError); claims obtained with the same decode while the clock was set 60s before exp";
  } else if (expect === "wrong-secret") {
    if (!decodeError) throw new Error(`${name}: wrong-secret token decoded with secret`);
    claimsOut = await dec(OTHER_SECRET);
    entry.claimsNote = "decoded with otherSecret; decoding with secret fails (see decodeError)";
  }
  entry.claims = claimsOut;
  entry.expect = expect;
  if (decodeError) entry.decodeError = decodeError;
  cases.push(entry);
  return entry;
}

await addCase({ name: "v4-valid", v: 4, cookieName: "next-auth.session-token",
  claims: baseClaims, maxAge: HUNDRED_YEARS, encSecret: SECRET, expect: "valid" });

const big = await addCase({ name: "v4-valid-chunked", v: 4, cookieName: "next-auth.session-token",
  claims: { ...baseClaims, picture: bigPicture }, maxAge: HUNDRED_YEARS, encSecret: SECRET, expect: "valid" });
{
  const logger = { debug() {}, error() {}, warn() {} };
  const store = new SessionStore(
    { name: big.cookieName, options: { httpOnly: true, sameSite: "lax", path: "/", secure: false } },
    { cookies: {}, headers: {} }, logger);
  const chunks = store.chunk(big.token, {}).map(({ name, value }) => ({ name, value }));
  if (chunks.length < 2) throw new Error("expected the big token to be chunked");
  // Reassemble with next-auth's own SessionStore reader, exactly as getToken() does.
  const reader = new SessionStore({ name: big.cookieName, options: {} },
    { cookies: Object.fromEntries(chunks.map((c) => [c.name, c.value])), headers: {} }, logger);
  if (reader.value !== big.token) throw new Error("chunk reassembly mismatch");
  big.chunks = chunks;
  big.chunkingNote = "produced by next-auth/core/lib/cookie.js SessionStore.chunk(); chunk size = 4096 - 163 = 3933 chars; reassembled by SessionStore.value (sorted by numeric suffix, joined)";
}

await addCase({ name: "v4-expired", v: 4, cookieName: "next-auth.session-token",
  claims: baseClaims, maxAge: -3600, encSecret: SECRET, expect: "expired" });

await addCase({ name: "v4-wrong-secret", v: 4, cookieName: "next-auth.session-token",
  claims: baseClaims, maxAge: HUNDRED_YEARS, encSecret: OTHER_SECRET, expect: "wrong-secret" });

await addCase({ name: "v5-valid", v: 5, cookieName: "authjs.session-token",
  claims: baseClaims, maxAge: HUNDRED_YEARS, encSecret: SECRET, expect: "valid" });

await addCase({ name: "v5-valid-secure", v: 5, cookieName: "__Secure-authjs.session-token",
  claims: baseClaims, maxAge: HUNDRED_YEARS, encSecret: SECRET, expect: "valid" });

await addCase({ name: "v5-expired", v: 5, cookieName: "authjs.session-token",
  claims: baseClaims, maxAge: -3600, encSecret: SECRET, expect: "expired" });

const out = {
  description: "Real NextAuth v4 / Auth.js v5 session-token fixtures generated by generate.mjs. Test secrets only.",
  generatedAt: new Date().toISOString(),
  secret: SECRET,
  otherSecret: OTHER_SECRET,
  versions: { "next-auth": NEXT_AUTH_VERSION, "@auth/core": AUTH_CORE_VERSION, node: process.version },
  cases,
};
writeFileSync(path.join(here, "tokens.json"), JSON.stringify(out, null, 2) + "\n");
for (const c of cases) {
  console.log(c.name.padEnd(18), c.library.padEnd(20), JSON.stringify(c.header), c.tokenLength,
    c.expect, c.decodeError ?? "decoded ok", c.chunks ? `chunks=${c.chunks.map((x) => x.value.length)}` : "");
}
