// @sentry/node as a server would run it: two occurrences of one error and a
// message, sent to the DSN given as the first argument. Prints what the
// SDK's transport was answered; exits non-zero if it did not flush.
import * as Sentry from "@sentry/node";

const [dsn] = process.argv.slice(2);
const answers = [];
Sentry.init({
  dsn,
  release: "deals@2.0.0",
  environment: "ci",
  tracesSampleRate: 0,
  // The events of this script only, not the process's.
  defaultIntegrations: false,
  beforeSend(event) {
    event.tags = { ...event.tags, sessionId: "node-session" };
    return event;
  },
});
Sentry.getClient().on("afterSendEvent", (event, response) => {
  answers.push(response && response.statusCode);
});

function priceOf(deal) {
  return deal.price.amount;
}

for (const _ of [1, 2]) {
  try {
    priceOf({});
  } catch (error) {
    Sentry.captureException(error);
  }
  // Between the two: the SDK drops an event identical to the one before it.
  Sentry.captureMessage("price feed slow", "warning");
}
const flushed = await Sentry.flush(10_000);
console.log(JSON.stringify({ flushed, answers }));
process.exit(flushed ? 0 : 1);
