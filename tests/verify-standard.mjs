// Reads {secret, body, headers} as JSON on stdin and verifies the request
// with the official Standard Webhooks library; exits non-zero if it fails.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, body, headers } = JSON.parse(input);
try {
  new Webhook(secret).verify(body, headers);
  console.log("verified");
} catch (e) {
  console.error("verification failed:", e.message);
  process.exit(1);
}
