/**
 * The engine worker's source inlined into the browser bundle, as a string.
 *
 * In the repository this is `undefined`: scripts/build.mjs bundles bindings/browser/worker.ts
 * first and substitutes its minified text here while bundling dist/browser.js, so the
 * page can start the worker from a Blob URL with no extra file for the user's bundler to
 * find. Running the sources directly falls back to `new URL("./worker.ts", import.meta.url)`.
 */
export const WORKER_SOURCE: string | undefined = undefined;
