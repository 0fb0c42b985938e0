// @openfeature/server-sdk with the official OFREP server provider, as a
// backend service runs it: each evaluation is one POST to the single-flag
// endpoint of the OFREP server at the base URL given as the first argument.
// The second argument is the list of evaluations, as JSON:
//   [{"flag": "...", "type": "boolean"|"string"|"number"|"object",
//     "default": <value>, "context": {...}}]
// Prints {"results": [{flag, value, variant, reason, errorCode, errorMessage,
// flagMetadata}]}, one per evaluation in order (errorCode as the SDK reports
// it, null when none). Evaluation errors are results, not failures; exits
// non-zero on bad arguments, if the SDK itself fails, or if a request got
// no HTTP answer.
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";

const GETTERS = {
  boolean: "getBooleanDetails",
  string: "getStringDetails",
  number: "getNumberDetails",
  object: "getObjectDetails",
};

function fail(message) {
  console.error(`node.mjs: ${message}`);
  console.log(JSON.stringify({ error: message }));
  process.exit(1);
}

const [baseUrl, evaluationsJson] = process.argv.slice(2);
if (!baseUrl || !evaluationsJson) fail("usage: node node.mjs <baseUrl> <evaluationsJson>");
let evaluations;
try {
  evaluations = JSON.parse(evaluationsJson);
} catch (error) {
  fail(`evaluations are not JSON: ${error.message}`);
}
if (!Array.isArray(evaluations)) fail("evaluations must be a JSON array");
for (const [i, e] of evaluations.entries()) {
  if (!e || typeof e.flag !== "string" || !GETTERS[e.type] || !("default" in e)) {
    fail(`evaluation ${i} needs "flag", "type" (${Object.keys(GETTERS).join("|")}) and "default"`);
  }
}

const results = [];
// Requests that got no HTTP answer at all (refused, reset, DNS): the
// provider turns them into GENERAL errors, indistinguishable in the details
// from a GENERAL the server sent, so they are caught here as failures.
const unanswered = [];
try {
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl }));
  const client = OpenFeature.getClient("ofrep-interop");
  client.addHooks({
    error(hookContext, error) {
      if (error?.name === "OFREPApiFetchError") {
        unanswered.push(`${hookContext.flagKey}: ${error.message} ${error.cause ?? ""}`);
      }
    },
  });
  for (const { flag, type, default: defaultValue, context } of evaluations) {
    const details = await client[GETTERS[type]](flag, defaultValue, context ?? {});
    results.push({
      flag,
      value: details.value ?? null,
      variant: details.variant ?? null,
      reason: details.reason ?? null,
      errorCode: details.errorCode ?? null,
      errorMessage: details.errorMessage ?? null,
      flagMetadata: details.flagMetadata ?? {},
    });
  }
  await OpenFeature.close();
} catch (error) {
  fail(`OpenFeature failed: ${error?.stack ?? error}`);
}
if (unanswered.length) {
  console.error(`node.mjs: requests not answered: ${unanswered.join("; ")}`);
  console.log(JSON.stringify({ results, error: "requests not answered" }));
  process.exit(1);
}
console.log(JSON.stringify({ results }));
