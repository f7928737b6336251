/**
 * Deno entry of the cross-runtime bench (bundled by run.ts with dist/deno.js as the API,
 * what `npm:ext4-wasm/deno` resolves to). Usage: deno run … runner-deno.mjs JOB_JSON
 */
import * as api from "../../deno/mod.ts";
import { runHost, type HostJob } from "./runner-host.ts";

declare const Deno: { args: string[] };
await runHost("deno", api, JSON.parse(Deno.args[0]!) as HostJob, "FileDevice (Deno.FsFile)");
