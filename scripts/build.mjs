#!/usr/bin/env node
// Build everything `npm install` needs: the AssemblyScript engine (release and debug),
// the esbuild bundles for each runtime, and the type declarations. Prints sizes.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values: opts } = parseArgs({ options: { "wasm-only": { type: "boolean" }, quiet: { type: "boolean" } } });
const log = (...a) => { if (!opts.quiet) console.log(...a); };
const asc = join(root, "node_modules", "assemblyscript", "bin", "asc.js");
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });

mkdirSync(join(root, "build"), { recursive: true });
run(process.execPath, [asc, "--target", "release"]);
run(process.execPath, [asc, "--target", "debug"]);
const sizes = [["build/engine.wasm", join(root, "build/engine.wasm")]];

if (!opts["wasm-only"]) {
  const esbuild = await import("esbuild");
  const entries = [
    ["dist/index.js", "bindings/index.ts", "neutral"],
    ["dist/node.js", "bindings/node.ts", "node"],
    ["dist/browser.js", "bindings/browser.ts", "browser"],
    ["dist/cli.js", "bindings/cli.ts", "node"],
    // Deno through npm (npm:ext4-wasm/deno): node:* imports stay imports, Deno has them.
    ["dist/deno.js", "deno/mod.ts", "node"],
  ].filter(([, src]) => existsSync(join(root, src)));
  for (const [out, src, platform] of entries) {
    await esbuild.build({
      entryPoints: [join(root, src)],
      outfile: join(root, out),
      bundle: true,
      format: "esm",
      platform,
      target: "es2022",
      sourcemap: true,
      legalComments: "none",
      banner: out === "dist/cli.js" ? { js: "#!/usr/bin/env node" } : undefined,
      logLevel: "warning",
    });
    sizes.push([out, join(root, out)]);
  }

  // Declarations for the package's "types": consumers' tsc cannot read our .ts sources
  // (they import with .ts extensions), so each entry's types are emitted as .d.ts.
  // deno/mod.ts is left out: tsc has no Deno namespace, and Deno reads .ts types itself.
  const typed = ["bindings/index.ts", "bindings/node.ts", "bindings/browser.ts"].filter((f) => existsSync(join(root, f)));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  run(process.execPath, [
    tsc, "--declaration", "--emitDeclarationOnly", "--rewriteRelativeImportExtensions", "--allowImportingTsExtensions",
    "--target", "ES2022", "--module", "ESNext", "--moduleResolution", "Bundler",
    "--lib", "ES2022,DOM,DOM.Iterable,WebWorker.ImportScripts", "--types", "node",
    "--strict", "--skipLibCheck", "--isolatedModules", "--verbatimModuleSyntax",
    "--rootDir", root, "--outDir", join(root, "dist", "types"), ...typed.map((f) => join(root, f)),
  ]);
}

if (!opts.quiet) {
  const rows = sizes.map(([name, path]) => {
    const buf = readFileSync(path);
    return `${name.padEnd(22)} ${String(statSync(path).size).padStart(9)} B  gzip ${String(gzipSync(buf).length).padStart(8)} B`;
  });
  console.log(rows.join("\n"));
}
