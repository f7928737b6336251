/**
 * Deno entry of the cross-runtime bench, run as bundled by run.ts with dist/deno.js (what
 * `npm:ext4-wasm/deno` resolves to) kept as an external import, so the engine finds its
 * wasm beside dist/. The import names the built file rather than deno/mod.ts because tsc
 * (`npm run typecheck`) has no Deno types and would otherwise check deno/ through here.
 * Usage: deno run … runner-deno.mjs JOB_JSON
 */
// @ts-expect-error the built bundle has no declarations; runner-host.ts's HostApi types it
import * as denoApi from "../../dist/deno.js";
import { runHost, type HostApi, type HostJob } from "./runner-host.ts";

declare const Deno: { args: string[] };
await runHost("deno", denoApi as HostApi, JSON.parse(Deno.args[0]!) as HostJob, "FileDevice (Deno.FsFile)");
