/**
 * Node entry of the cross-runtime bench (bundled by run.ts with dist/node.js as the API,
 * the module a user's `import "ext4-wasm/node"` gets). Usage: node runner-node.mjs JOB_JSON
 */
import * as api from "../../bindings/node.ts";
import { runHost, type HostJob } from "./runner-host.ts";

await runHost("node", api, JSON.parse(process.argv[2]!) as HostJob, "FileDevice (node:fs)");
