// @sentry/browser in headless Chromium, as the site runs it: a page on one
// origin whose SDK sends to the events function on another. The page throws
// the same uncaught error on two clicks and captures a message between
// them. Arguments: the DSN, the port to serve the page on, the Chromium
// binary. Prints the statuses of the SDK's requests that carried events;
// exits non-zero unless three were answered 200.
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import puppeteer from "puppeteer-core";

const [dsn, port, chromium] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));

const bundle = await build({
  stdin: {
    contents: 'import * as Sentry from "@sentry/browser"; window.Sentry = Sentry;',
    resolveDir: here,
  },
  bundle: true,
  format: "iife",
  platform: "browser",
  write: false,
});
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>Deals</title>
<script src="/sentry.js"></script>
<script>
  Sentry.init({ dsn: ${JSON.stringify(dsn)}, release: "deals@1.4.2", environment: "ci" });
  function formatDeal(deal) { return deal.price.toFixed(2); }
  function book() { formatDeal(undefined); }
</script></head>
<body><button id="book" onclick="book()">Book</button></body></html>`;
const server = http
  .createServer((request, response) => {
    if (request.url === "/sentry.js") {
      response.writeHead(200, { "content-type": "text/javascript" });
      response.end(bundle.outputFiles[0].text);
    } else {
      response.writeHead(200, { "content-type": "text/html" });
      response.end(page);
    }
  })
  .listen(Number(port), "127.0.0.1");

const browser = await puppeteer.launch({
  executablePath: chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const statuses = [];
try {
  const tab = await browser.newPage();
  // Headless Chromium says so in its user agent, which the intake drops as
  // a bot's; a visitor's browser does not.
  await tab.setUserAgent(
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  );
  // Envelopes that carry events; the SDK also sends its session's.
  const carriesEvent = (request) =>
    request.url().includes("/envelope/") && /"type":"event"/.test(request.postData() || "");
  tab.on("response", (response) => {
    if (carriesEvent(response.request())) statuses.push(response.status());
  });
  tab.on("requestfailed", (request) => {
    if (carriesEvent(request)) statuses.push(`failed: ${request.failure()?.errorText}`);
  });
  await tab.goto(`http://127.0.0.1:${port}/`);
  await tab.click("#book");
  await tab.evaluate(() => Sentry.captureMessage("no deals for this search", "warning"));
  await tab.click("#book");
  await tab.evaluate(() => Sentry.flush(10_000));
  const deadline = Date.now() + 10_000;
  while (statuses.length < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify({ statuses }));
process.exit(statuses.length === 3 && statuses.every((s) => s === 200) ? 0 : 1);
