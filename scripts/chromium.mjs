// Shared by everything that drives Chromium with Playwright (scripts/test-browser.mjs,
// bench/cross-runtime/run.ts): which binary, how loudly to complain when it is missing,
// and the launch flags — kept in one place so the tests and the bench run the same
// browser the same way. Debian's /usr/bin/chromium unless CHROMIUM_PATH says otherwise.
import { existsSync } from "node:fs";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** True when the Chromium binary is present. */
export function haveChromium() {
  return existsSync(CHROMIUM);
}

/** Print the unmissable "the browser part did not run" banner (`what` names that part). */
export function reportMissingChromium(what) {
  const bar = "!".repeat(78);
  console.error(`\n${bar}\n!!  CHROMIUM NOT FOUND at ${CHROMIUM}: ${what} DID NOT RUN.\n!!  Install it (apt-get install -y chromium) or set CHROMIUM_PATH; .ci/run installs it.\n${bar}\n`);
}

/** Launch headless Chromium through playwright-core; resolves to its Browser. */
export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: process.getuid?.() === 0 || process.env.CI ? ["--no-sandbox"] : [],
  });
}
