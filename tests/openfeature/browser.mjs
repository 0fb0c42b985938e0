// @openfeature/web-sdk with the official OFREP web provider in headless
// Chromium, as a site runs it: a page on one origin (127.0.0.1:<pagePort>)
// whose provider bulk-evaluates flags at the OFREP server on another, polls
// it with If-None-Match, and re-evaluates when the context changes.
// Arguments: the OFREP base URL, the port to serve the page on, the Chromium
// binary, and the evaluations as JSON:
//   {"context": {...}, "flags": [{"flag", "type", "default"}],
//    "secondContext": {...}, "options": {...}}
// ("options", optional, are more OFREPWebProvider options, e.g.
// {"cacheMode": "disabled"}; by default the provider keeps its
// local-cache-first cache, as a site's does.)
// Prints {"first": [details], "second": [details], "afterPoll": [details],
// "requests": [{method, status, ifNoneMatch, etagSent, etag, context}],
// "preflights": [...], "events": [{type, message}]}. Details are {flag,
// value, variant, reason, errorCode, errorMessage, flagMetadata} as the SDK
// gives them after setProviderAndWait with "context", after
// setContext("secondContext"), and after at least one poll that followed
// it. Requests are the POSTs that the page made to the bulk endpoint, in
// order, as Chromium saw them on the wire (etag: the response's ETag
// header, whether or not CORS let the page read it); preflights, the
// OPTIONS requests before them; events, the provider events the page got.
// Exits non-zero, with the reason on stderr (and as "error" in the printed
// JSON), if the provider does not become ready, a bulk request fails, the
// provider reports an error or stale flags, or no poll is answered.
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import puppeteer from "puppeteer-core";

const POLL_INTERVAL_MS = 500;
const TYPES = ["boolean", "string", "number", "object"];

const [baseUrl, port, chromium, evaluationsJson] = process.argv.slice(2);
const out = { first: null, second: null, afterPoll: null, requests: [], preflights: [], events: [] };
function finish(error) {
  if (error) {
    console.error(`browser.mjs: ${error}`);
    out.error = String(error);
  }
  console.log(JSON.stringify(out));
  process.exit(error ? 1 : 0);
}
if (!baseUrl || !port || !chromium || !evaluationsJson) {
  finish("usage: node browser.mjs <baseUrl> <pagePort> <chromium> <evaluationsJson>");
}
let evaluations;
try {
  evaluations = JSON.parse(evaluationsJson);
} catch (error) {
  finish(`evaluations are not JSON: ${error.message}`);
}
const { context, flags, secondContext, options = {} } = evaluations ?? {};
if (typeof context !== "object" || typeof secondContext !== "object" || !Array.isArray(flags)) {
  finish('evaluations need "context", "secondContext" (objects) and "flags" (array)');
}
if (typeof options !== "object" || options === null) finish('"options" must be an object');
for (const [i, f] of flags.entries()) {
  if (!f || typeof f.flag !== "string" || !TYPES.includes(f.type) || !("default" in f)) {
    finish(`flag ${i} needs "flag", "type" (${TYPES.join("|")}) and "default"`);
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = await build({
  stdin: {
    contents: `import { OpenFeature } from "@openfeature/web-sdk";
      import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
      window.OpenFeature = OpenFeature;
      window.OFREPWebProvider = OFREPWebProvider;`,
    resolveDir: here,
  },
  bundle: true,
  format: "iife",
  platform: "browser",
  write: false,
});
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>Deals</title>
<script src="/openfeature.js"></script></head>
<body><p>Deals</p></body></html>`;
const server = http
  .createServer((request, response) => {
    if (request.url === "/openfeature.js") {
      response.writeHead(200, { "content-type": "text/javascript" });
      response.end(bundle.outputFiles[0].text);
    } else {
      response.writeHead(200, { "content-type": "text/html" });
      response.end(page);
    }
  })
  .listen(Number(port), "127.0.0.1");

const ofrepOrigin = new URL(baseUrl).origin;
const isBulk = (request) => {
  const url = new URL(request.url());
  return url.origin === ofrepOrigin && url.pathname.endsWith("/ofrep/v1/evaluate/flags");
};
// Requests in the order the page made them; each is filled in when answered.
const records = new Map();

let browser = null;
let tab = null;
let error = null;
try {
  browser = await puppeteer.launch({
    executablePath: chromium,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  tab = await browser.newPage();
  tab.on("console", (message) => console.error(`page ${message.type()}: ${message.text()}`));
  tab.on("pageerror", (pageError) => console.error(`page exception: ${pageError.message}`));
  tab.on("request", (request) => {
    if (!isBulk(request)) return;
    const headers = request.headers();
    const record = {
      method: request.method(),
      status: null,
      ifNoneMatch: "if-none-match" in headers,
      etagSent: headers["if-none-match"] ?? null,
      context: JSON.parse(request.postData() || "{}").context ?? null,
    };
    // When the page made it; not printed.
    Object.defineProperty(record, "at", { value: Date.now(), enumerable: false });
    records.set(request, record);
    (record.method === "OPTIONS" ? out.preflights : out.requests).push(record);
  });
  tab.on("response", (response) => {
    const record = records.get(response.request());
    if (!record) return;
    record.status = response.status();
    record.etag = response.headers().etag ?? null;
  });
  tab.on("requestfailed", (request) => {
    const record = records.get(request);
    if (record) record.failure = request.failure()?.errorText ?? "failed";
  });
  await tab.goto(`http://127.0.0.1:${port}/`);

  const started = await tab.evaluate(
    async ({ baseUrl, pollInterval, context, flags, secondContext, options }) => {
      const getters = {
        boolean: "getBooleanDetails",
        string: "getStringDetails",
        number: "getNumberDetails",
        object: "getObjectDetails",
      };
      window.ofrepEvents = [];
      for (const type of ["PROVIDER_READY", "PROVIDER_ERROR", "PROVIDER_STALE", "PROVIDER_CONFIGURATION_CHANGED", "PROVIDER_CONTEXT_CHANGED", "PROVIDER_RECONCILING"]) {
        OpenFeature.addHandler(type, (details) => window.ofrepEvents.push({ type, message: details?.message ?? null }));
      }
      const client = OpenFeature.getClient();
      window.ofrepRecord = () =>
        flags.map(({ flag, type, default: defaultValue }) => {
          const details = client[getters[type]](flag, defaultValue);
          return {
            flag,
            value: details.value ?? null,
            variant: details.variant ?? null,
            reason: details.reason ?? null,
            errorCode: details.errorCode ?? null,
            errorMessage: details.errorMessage ?? null,
            flagMetadata: details.flagMetadata ?? {},
          };
        });
      const provider = new OFREPWebProvider({ baseUrl, pollInterval, ...options });
      try {
        await OpenFeature.setProviderAndWait(provider, context);
      } catch (error) {
        return { error: `setProviderAndWait: ${error?.name}: ${error?.message}`, first: window.ofrepRecord() };
      }
      const first = window.ofrepRecord();
      await OpenFeature.setContext(secondContext);
      const second = window.ofrepRecord();
      return { first, second };
    },
    { baseUrl, pollInterval: POLL_INTERVAL_MS, context, flags, secondContext, options },
  );
  out.first = started.first;
  out.second = started.second ?? null;
  if (started.error) throw new Error(started.error);

  // At least one poll, started on the provider's own timer after the
  // context change (not the fetch or background refresh that the change
  // itself made), and answered.
  const changed = Date.now();
  const polled = () => out.requests.some((r) => r.at > changed + 100 && (r.status !== null || r.failure));
  const deadline = changed + 10 * POLL_INTERVAL_MS;
  while (!polled() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!polled()) throw new Error(`no poll was answered within ${10 * POLL_INTERVAL_MS} ms`);
  // The provider handles the answer on the page after the response event.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closing = await tab.evaluate(async () => {
    const afterPoll = window.ofrepRecord();
    const events = window.ofrepEvents;
    await OpenFeature.close();
    return { afterPoll, events };
  });
  out.afterPoll = closing.afterPoll;
  out.events = closing.events;
  const failed = out.requests.filter((r) => r.failure);
  if (failed.length) throw new Error(`bulk requests failed: ${JSON.stringify(failed)}`);
  const bad = out.events.filter((e) => e.type === "PROVIDER_ERROR" || e.type === "PROVIDER_STALE");
  if (bad.length) throw new Error(`the provider reported: ${JSON.stringify(bad)}`);
} catch (caught) {
  error = caught?.message ?? String(caught);
  if (!out.events.length && tab) {
    out.events = (await tab.evaluate(() => window.ofrepEvents).catch(() => null)) ?? [];
  }
} finally {
  await browser?.close();
  server.close();
}
// Requests still in flight when the page closed are not the provider's doing.
out.requests = out.requests.filter((r) => r.status !== null || r.failure);
finish(error);
