// The ext4-wasm web page: build an ext4 image from a dropped folder, or open an image,
// browse and edit it, download the result. Plain DOM code over the browser bundle.
//
// Every volume lives in a worker (openVolume's default on the page), so the page stays
// responsive while files are copied; the page only ever holds one volume (`vol`) and
// replaces it when another is built or opened. One operation runs at a time (`busy`);
// the stats panel polls vol.stats() and vol.statfs() twice a second while a volume is open
// and shows every background mechanism's counters (lazy init, inodegc lanes, endio, cache).
import { openVolume, isFsError } from "../dist/browser.js";

const $ = (sel) => document.querySelector(sel);
const ui = {
  drop: $("#drop"), folder: $("#folder-input"), image: $("#image-input"), add: $("#add-input"),
  label: $("#label"), size: $("#size"), work: $("#work"), status: $("#status"), progress: $("#progress"),
  browser: $("#browser"), crumbs: $("#crumbs"), tbody: $("#tree tbody"), download: $("#download"),
  mkdir: $("#mkdir"), viewer: $("#viewer"), viewerName: $("#viewer-name"), viewerBody: $("#viewer-body"),
  viewerClose: $("#viewer-close"), stats: $("#stats"),
};

let vol = null;
let volName = "ext4.img";
let cwd = "/";
let busy = false;

const MiB = 1 << 20;
const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < MiB ? `${(n / 1024).toFixed(1)} KiB` : n < 1 << 30 ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 2 ** 30).toFixed(2)} GiB`);
const joinPath = (dir, name) => (dir === "/" ? "/" : dir + "/") + name;

function setStatus(text, fraction) {
  ui.work.hidden = false;
  ui.status.textContent = text;
  if (fraction === undefined) ui.progress.removeAttribute("value");
  else ui.progress.value = Math.max(0, Math.min(1, fraction));
}

function fail(e) {
  console.error(e);
  setStatus(`error: ${isFsError(e) ? `${e.code} ${e.message}` : e?.message ?? e}`, 0);
}

/** Run one operation at a time; the buttons stay usable but a second click waits its turn. */
async function exclusive(fn) {
  if (busy) return;
  busy = true;
  document.body.classList.add("busy");
  try {
    await fn();
  } catch (e) {
    fail(e);
  } finally {
    busy = false;
    document.body.classList.remove("busy");
    refreshStats(); // show the state the operation left, not the last poll's
  }
}

// ---- collecting a folder: from <input webkitdirectory> or a drop ----

/** Files of an <input webkitdirectory>: paths relative to the picked folder (its name dropped). */
function entriesFromInput(files) {
  return [...files].map((f) => {
    const rel = (f.webkitRelativePath || f.name).split("/");
    return { path: rel.length > 1 ? rel.slice(1).join("/") : rel[0], file: f, mtime: f.lastModified };
  });
}

function readAllEntries(reader) {
  return new Promise((resolve, reject) => {
    const all = [];
    const next = () => reader.readEntries((batch) => (batch.length ? (all.push(...batch), next()) : resolve(all)), reject);
    next();
  });
}

/** Walk a dropped FileSystemEntry tree: directories too (so empty ones survive). */
async function entriesFromDrop(items) {
  const out = [];
  volName = "dropped.img";
  const walk = async (entry, rel) => {
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      out.push({ path: rel, file, mtime: file.lastModified });
    } else if (entry.isDirectory) {
      if (rel) out.push({ path: rel });
      for (const child of await readAllEntries(entry.createReader())) await walk(child, rel ? `${rel}/${child.name}` : child.name);
    }
  };
  // Items die with the drop event: take entries (or, where the browser gives none, the
  // plain files) now, before the first await.
  const roots = [];
  const loose = [];
  for (const item of items) {
    if (item.kind !== "file") continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry) roots.push(entry);
    else if (item.getAsFile()) loose.push(item.getAsFile());
  }
  for (const f of loose) out.push({ path: f.name, file: f, mtime: f.lastModified });
  // One dropped folder: its contents become the image's root (like mke2fs -d DIR).
  if (roots.length === 1 && roots[0].isDirectory && loose.length === 0) {
    volName = `${roots[0].name}.img`;
    await walk(roots[0], "");
  } else {
    for (const r of roots) await walk(r, r.name);
  }
  return out;
}

/** A size with room for the data, the inodes (one per 16 KiB at worst) and the journal. */
function autoSize(entries) {
  const data = entries.reduce((n, e) => n + Math.ceil((e.file?.size ?? 4096) / 4096) * 4096, 0);
  const bySpace = data * 1.25 + 24 * MiB;
  const byInodes = entries.length * 16384 * 1.5;
  return Math.ceil(Math.max(bySpace, byInodes, 16 * MiB) / MiB) * MiB;
}

async function buildFromEntries(entries) {
  const totalBytes = entries.reduce((n, e) => n + (e.file?.size ?? 0), 0);
  let size = ui.size.value === "auto" ? autoSize(entries) : Number(ui.size.value);
  let ready = "";
  for (let attempt = 0; ; attempt++) {
    await closeVolume();
    setStatus(`formatting ${fmtBytes(size)}…`, 0);
    vol = await openVolume({ size, mkfs: { label: ui.label.value.slice(0, 16) } });
    startStats();
    try {
      const t0 = performance.now();
      const done = await vol.importFiles(entries, "/", (p) => {
        setStatus(`copying ${p.files}/${p.totalFiles} files, ${fmtBytes(p.bytes)} of ${fmtBytes(p.totalBytes)}`, p.totalBytes ? p.bytes / p.totalBytes : p.files / p.totalFiles);
      });
      await vol.sync();
      const secs = (performance.now() - t0) / 1000;
      ready = `image ready: ${done.files} entries, ${fmtBytes(totalBytes)} in ${secs.toFixed(1)} s — ${fmtBytes(size)} image`;
      break;
    } catch (e) {
      // The automatic size guessed too small: try again twice as large.
      if (isFsError(e, "ENOSPC") && ui.size.value === "auto" && attempt < 3) {
        size *= 2;
        continue;
      }
      throw e;
    }
  }
  ui.download.disabled = false;
  await showDir("/");
  // Only now: "ready" promises the tree on screen, not just the image in the worker.
  setStatus(ready, 1);
}

// ---- opening an image ----

async function openImage(file) {
  await closeVolume();
  volName = file.name;
  setStatus(`opening ${file.name} (${fmtBytes(file.size)})…`);
  vol = await openVolume({ image: file });
  startStats();
  const info = await vol.info().catch(() => null);
  ui.download.disabled = false;
  await showDir("/");
  setStatus(`opened ${file.name}${info?.label ? ` — label “${info.label}”` : ""}`, 1);
}

async function closeVolume() {
  stopStats();
  const old = vol;
  vol = null;
  if (old) await old.unmount().catch(() => {});
  ui.browser.hidden = true;
}

// ---- browsing ----

function crumbs(path) {
  ui.crumbs.textContent = "";
  const parts = path.split("/").filter(Boolean);
  const link = (label, to) => {
    const a = document.createElement("a");
    a.textContent = label;
    a.dataset.path = to;
    a.addEventListener("click", () => exclusive(() => showDir(to)));
    return a;
  };
  ui.crumbs.append(link("/", "/"));
  let at = "";
  for (const p of parts) {
    at += `/${p}`;
    ui.crumbs.append(" ", link(p, at), " /");
  }
}

const modeString = (m) => {
  const t = (m & 0o170000) === 0o040000 ? "d" : (m & 0o170000) === 0o120000 ? "l" : "-";
  const r = (b, s) => (m & b ? s : "-");
  return t + r(256, "r") + r(128, "w") + r(64, "x") + r(32, "r") + r(16, "w") + r(8, "x") + r(4, "r") + r(2, "w") + r(1, "x");
};

async function showDir(path) {
  cwd = path;
  ui.browser.hidden = false;
  ui.viewer.hidden = true;
  crumbs(path);
  const ents = await vol.readdir(path, { withFileTypes: true });
  ents.sort((a, b) => (b.isDirectory() - a.isDirectory()) || a.name.localeCompare(b.name));
  const rows = [];
  for (const d of ents) {
    const full = joinPath(path, d.name);
    const st = await vol.lstat(full);
    const tr = document.createElement("tr");
    tr.dataset.name = d.name;
    const name = document.createElement("td");
    name.className = "name";
    const a = document.createElement("a");
    a.textContent = d.isDirectory() ? `${d.name}/` : d.name;
    if (d.isDirectory()) a.className = "dir";
    a.addEventListener("click", () => exclusive(() => (d.isDirectory() ? showDir(full) : viewFile(full, st))));
    name.append(a);
    if (d.isSymbolicLink()) name.append(` → ${await vol.readlink(full)}`);
    const del = document.createElement("button");
    del.textContent = "delete";
    del.className = "delete";
    del.addEventListener("click", () => exclusive(async () => {
      await vol.rm(full, { recursive: true });
      setStatus(`deleted ${full}`, 1);
      await showDir(cwd);
    }));
    const cells = [fmtBytes(st.size), modeString(st.mode), st.mtime.toISOString().slice(0, 19).replace("T", " ")].map((t) => {
      const td = document.createElement("td");
      td.textContent = t;
      return td;
    });
    const last = document.createElement("td");
    last.append(del);
    tr.append(name, ...cells, last);
    rows.push(tr);
  }
  ui.tbody.replaceChildren(...rows);
}

const PREVIEW = 256 * 1024;

async function viewFile(path, st) {
  const bytes = await vol.readFile(path);
  const head = bytes.subarray(0, PREVIEW);
  const binary = head.includes(0);
  ui.viewerName.textContent = `${path} — ${fmtBytes(st.size)}`;
  ui.viewerBody.textContent = binary
    ? [...head.subarray(0, 4096)].map((b, i) => (i % 16 === 0 ? `\n${i.toString(16).padStart(6, "0")}  ` : "") + b.toString(16).padStart(2, "0")).join(" ").trim()
    : new TextDecoder().decode(head) + (bytes.length > PREVIEW ? "\n…" : "");
  ui.viewer.hidden = false;
}

// ---- live stats ----

let statsTimer = 0;
let statsBusy = false;

function startStats() {
  stopStats();
  statsTimer = setInterval(refreshStats, 500);
  refreshStats();
}

function stopStats() {
  clearInterval(statsTimer);
  statsTimer = 0;
  ui.stats.replaceChildren(...row("state", "no volume open"));
}

function row(k, v) {
  const dt = document.createElement("dt");
  dt.textContent = k;
  const dd = document.createElement("dd");
  dd.textContent = v;
  return [dt, dd];
}

/** "3/0/1/0": one number per inodegc lane. */
const lanes = (q) => (Array.isArray(q) && q.length ? q.join("/") : "?");

async function refreshStats() {
  if (!vol || statsBusy) return;
  statsBusy = true;
  try {
    const [s, fs] = await Promise.all([vol.stats(), vol.statfs()]);
    const c = s.cache ?? {};
    const d = s.device ?? {};
    const li = s.lazyInit ?? {};
    // inodegc / endio are absent on read-only mounts (no background writers there).
    const gc = s.inodegc;
    const io = s.endio;
    ui.stats.replaceChildren(
      ...row("image", `${volName}, ${fmtBytes(s.size)} (${s.kind})${s.frozen ? " — frozen" : ""}`),
      ...row("space", `${fmtBytes((fs.blocks - fs.bfree) * fs.bsize)} used of ${fmtBytes(fs.blocks * fs.bsize)}, ${fs.files - fs.ffree} of ${fs.files} inodes`),
      ...row("lazy inode-table init", `${li.groupsZeroed ?? "?"} / ${li.groupsTotal ?? "?"} groups zeroed${li.running ? " (running)" : ""}${li.turns ? `, ${li.turns} turns, ${fmtBytes(li.bytesZeroed ?? 0)} zeroed` : ""}`),
      ...row("inode inactivation (inodegc)", gc
        ? `${lanes(gc.queued)} queued per lane, ${gc.throttled} throttled, ${gc.inactivated} inactivated in ${gc.runs} runs${gc.errors ? `, ${gc.errors} errors` : ""}${gc.running ? "" : " (stopped)"}`
        : "off"),
      ...row("write completion (endio)", io
        ? `${io.inFlight} ioEnds in flight, ${io.queued} queued; ${io.conversions} conversions (${io.blocksConverted} blocks), ${io.merges} merges${io.failures ? `, ${io.failures} failures` : ""}`
        : "off"),
      ...row("block cache", `${c.resident ?? "?"} resident, ${c.dirty ?? "?"} dirty, ${c.pinned ?? 0} pinned; ${c.hits ?? "?"} hits / ${c.misses ?? "?"} misses, ${c.evictions ?? 0} evictions`),
      ...row("device requests", `${d.reads ?? 0} reads (${fmtBytes(d.bytesRead ?? 0)}), ${d.writes ?? 0} writes (${fmtBytes(d.bytesWritten ?? 0)}), ${d.flushes ?? 0} flushes`),
      ...row("open files", String(s.openFiles ?? 0)),
      ...row("frozen", s.frozen ? "yes" : "no"),
    );
  } catch {
    // The volume was closed under the poll; the next one will show the new state.
  } finally {
    statsBusy = false;
  }
}

// ---- wiring ----

ui.folder.addEventListener("change", () => exclusive(async () => {
  const files = ui.folder.files;
  if (!files?.length) return;
  const top = (files[0].webkitRelativePath || "").split("/")[0];
  volName = `${top || "folder"}.img`;
  await buildFromEntries(entriesFromInput(files));
  ui.folder.value = "";
}));

ui.drop.addEventListener("dragover", (e) => { e.preventDefault(); ui.drop.classList.add("over"); });
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
ui.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  ui.drop.classList.remove("over");
  const items = e.dataTransfer?.items;
  if (!items?.length) return;
  const collected = entriesFromDrop(items); // synchronous up to its first await (see there)
  exclusive(async () => buildFromEntries(await collected));
});

ui.image.addEventListener("change", () => exclusive(async () => {
  const f = ui.image.files?.[0];
  if (f) await openImage(f);
  ui.image.value = "";
}));

ui.add.addEventListener("change", () => exclusive(async () => {
  const files = [...(ui.add.files ?? [])];
  if (!vol || !files.length) return;
  const dest = cwd;
  await vol.importFiles(files.map((f) => ({ path: f.name, file: f, mtime: f.lastModified })), dest, (p) =>
    setStatus(`adding ${p.files}/${p.totalFiles}`, p.files / p.totalFiles));
  setStatus(`added ${files.length} file${files.length === 1 ? "" : "s"} to ${dest}`, 1);
  ui.add.value = "";
  await showDir(dest);
}));

ui.mkdir.addEventListener("click", () => exclusive(async () => {
  const name = prompt("New folder name");
  if (!vol || !name) return;
  await vol.mkdir(joinPath(cwd, name));
  await showDir(cwd);
}));

ui.download.addEventListener("click", () => exclusive(async () => {
  setStatus("exporting image…");
  await vol.download(volName);
  setStatus(`downloaded ${volName}`, 1);
}));

ui.viewerClose.addEventListener("click", () => { ui.viewer.hidden = true; });

// For the Playwright test and the curious: the current volume and whether work is going on.
window.ext4web = { get volume() { return vol; }, get busy() { return busy; }, get cwd() { return cwd; } };
