/**
 * The engine's bytes inlined into the browser bundle, as base64.
 *
 * In the repository this is `undefined`: scripts/build.mjs replaces this module's text
 * while bundling dist/browser.js with the base64 of build/engine.wasm. Running the
 * TypeScript sources directly (a dev server, a test) therefore falls back to fetching
 * build/engine.wasm next to the sources (see loader.ts).
 */
export const ENGINE_WASM_BASE64: string | undefined = undefined;
