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

// Root in a container has no user namespaces for Chromium's sandbox.
const sandboxArgs = () => (process.getuid?.() === 0 || process.env.CI ? ["--no-sandbox"] : []);

/** Launch headless Chromium through playwright-core; resolves to its Browser (contexts are incognito-like). */
export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: sandboxArgs() });
}

/**
 * Headless Chromium with a profile in `userDataDir`; resolves to its BrowserContext. Use it
 * where storage must behave as for a user: in the incognito-like contexts of
 * launchChromium(), OPFS lives in memory behind a slower path, which a bench must not time.
 */
export async function launchChromiumPersistent(userDataDir, options = {}) {
  const { chromium } = await import("playwright-core");
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: sandboxArgs(), ...options });
}
