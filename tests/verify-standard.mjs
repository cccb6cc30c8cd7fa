// Reads {secret, body, headers} as JSON on stdin and verifies the request
// with the official Standard Webhooks library and with Svix's; exits
// non-zero if either rejects it.
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, body, headers } = JSON.parse(input);
for (const [name, Lib] of [["standardwebhooks", StandardWebhook], ["svix", SvixWebhook]]) {
  try {
    new Lib(secret).verify(body, headers);
    console.log(`${name}: verified`);
  } catch (e) {
    console.error(`${name}: verification failed: ${e.message}`);
    process.exit(1);
  }
}
