// Drives Debian's chromium (headless, through playwright-core) against a running `tether serve`
// for crates/cli/tests/ui_browser.rs, which starts the server, the workers and the jobs and
// checks the processes; this script only looks at pages and clicks.
//
//   node drive.mjs SCENARIO '{"base": "http://127.0.0.1:PORT", "token": "...", ...}'
//
// Prints one JSON line (what it saw) on stdout, last, and exits 0, or prints what failed and where on
// stderr and exits 1. Needs CHROMIUM (the browser binary) and NODE_PATH (a node_modules holding
// playwright-core), both printed by scripts/browser-env.
//
// Assumptions: the page contract of the web UI (ids and data attributes, see README "Web UI");
// `?token=` sets the session cookie. Caveat: pages follow the server with EventSource, which
// never lets the network go idle, so waits are on elements, never on "networkidle".
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

// ESM imports ignore NODE_PATH; require() honours it.
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const VIEWPORTS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];
const [scenario, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs ?? "{}");
const T = args.timeout_ms ?? 60000;

function fail(msg) {
  throw new Error(`${scenario}: ${msg}`);
}

function url(path) {
  const sep = path.includes("?") ? "&" : "?";
  return args.token ? `${args.base}${path}${sep}token=${encodeURIComponent(args.token)}` : `${args.base}${path}`;
}

async function open(browser, path, viewport = VIEWPORTS[0]) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const resp = await page.goto(url(path), { waitUntil: "domcontentloaded", timeout: T });
  if (!resp || resp.status() !== 200) {
    fail(`GET ${path} answered ${resp ? resp.status() : "nothing"}: ${resp ? (await resp.text()).slice(0, 300) : ""}`);
  }
  return { context, page, errors };
}

// A screenshot of `path` at each viewport, after `ready` is on the page; fails on a
// horizontal scroll bar (the page must fit a phone).
async function screenshots(browser, path, ready, name) {
  mkdirSync(args.shots, { recursive: true });
  const files = [];
  for (const viewport of VIEWPORTS) {
    const { context, page, errors } = await open(browser, path, viewport);
    await page.waitForSelector(ready, { timeout: T });
    // Fonts and the first live update settle; a screenshot mid-layout would be misleading.
    await page.waitForTimeout(300);
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
    }));
    if (scrollWidth > innerWidth) {
      fail(`${path} scrolls horizontally at ${viewport.width} px: content is ${scrollWidth} px wide`);
    }
    const file = join(args.shots, `${name}-${viewport.width}x${viewport.height}.png`);
    await page.screenshot({ path: file });
    files.push(file);
    if (errors.length) fail(`${path} raised JavaScript errors: ${errors.join("; ")}`);
    await context.close();
  }
  return files;
}

async function state(page) {
  return ((await page.textContent("#state").catch(() => null)) ?? "(no #state)").trim();
}

// Tells the test the page is watching (a line of its own on stdout): it may act now.
function ready() {
  console.log("READY");
}

// Counts navigations of the page after it loaded: a live update must not be one.
function countLoads(page) {
  const loads = { n: 0 };
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) loads.n++;
  });
  return loads;
}

const scenarios = {
  // The harness itself: chromium reaches the server and reads its API document.
  async smoke(browser) {
    const { page } = await open(browser, "/healthz");
    await open(browser, "/api/v1/openapi.json").then(async ({ page: p }) => {
      const text = await p.textContent("body");
      if (!text.includes('"openapi"')) fail(`the API document is not OpenAPI: ${text.slice(0, 200)}`);
    });
    return { healthz: (await page.textContent("body")).trim() };
  },

  // The runs table follows the store: the row of `key`, queued when the page loads, turns
  // running and then succeeded without a reload. The test starts the worker on READY.
  async runsLive(browser) {
    const { page, errors } = await open(browser, "/ui/runs");
    const loads = countLoads(page);
    const row = `#runs tr[data-key="${args.key}"]`;
    const rowState = () => page.getAttribute(row, "data-state", { timeout: 1000 }).catch(() => "(no row)");
    await page
      .waitForSelector(`${row}[data-state="queued"]`, { timeout: T })
      .catch(async () => fail(`no queued row ${args.key} in #runs (data-state=${await rowState()})`));
    await page.evaluate(() => (window.__tetherNoReload = true));
    ready();
    for (const want of ["running", "succeeded"]) {
      await page
        .waitForSelector(`${row}[data-state="${want}"]`, { timeout: T })
        .catch(async () => fail(`row ${args.key} did not turn ${want} without a reload (data-state=${await rowState()})`));
    }
    const same = await page.evaluate(() => window.__tetherNoReload === true);
    if (!same || loads.n > 0) fail(`the page reloaded (${loads.n} loads) instead of updating live`);
    if (errors.length) fail(`JavaScript errors: ${errors.join("; ")}`);
    const shots = await screenshots(browser, "/ui/runs", "#runs", "runs");
    return { shots };
  },

  // A run page after a takeover: the timeline holds the takeover entry.
  async runPage(browser) {
    const path = `/ui/runs/${encodeURIComponent(args.key)}`;
    const { page } = await open(browser, path);
    await page.waitForSelector("#timeline li", { timeout: T });
    const entries = await page.$$eval("#timeline li", (lis) =>
      lis.map((li) => ({ kind: li.dataset.kind ?? null, text: li.textContent.replace(/\s+/g, " ").trim() })),
    );
    if (!entries.some((e) => e.text.includes(args.expect))) {
      fail(`no timeline entry says "${args.expect}": ${JSON.stringify(entries)}`);
    }
    const state = (await page.textContent("#state")).trim();
    // Cancel and rerun depend on the state (a running run has no rerun): not asked here.
    for (const sel of ["#generations", "#logs"]) {
      if (!(await page.$(sel))) fail(`${path} has no ${sel}`);
    }
    const shots = await screenshots(browser, path, "#timeline li", "run");
    return { state, entries, shots };
  },

  // The fleet page lists the live workers.
  async fleet(browser) {
    const { page } = await open(browser, "/ui/fleet");
    await page.waitForSelector("#workers tr[data-owner]", { timeout: T });
    const owners = await page.$$eval("#workers tr[data-owner]", (trs) => trs.map((tr) => tr.dataset.owner));
    const shots = await screenshots(browser, "/ui/fleet", "#workers tr[data-owner]", "fleet");
    return { owners, shots };
  },

  // Cancel from the run page: the confirm dialog is accepted, the state turns cancelled live.
  async cancel(browser) {
    const path = `/ui/runs/${encodeURIComponent(args.key)}`;
    const { page } = await open(browser, path);
    const dialogs = [];
    page.on("dialog", async (d) => {
      dialogs.push({ type: d.type(), message: d.message() });
      await d.accept();
    });
    const stateIs = (want) =>
      page.waitForFunction((w) => document.querySelector("#state")?.textContent.trim().toLowerCase() === w, want, {
        timeout: T,
      });
    await stateIs("running").catch(async () => fail(`#state never showed running: "${await state(page)}"`));
    await page.click("#cancel", { timeout: T });
    await stateIs("cancelled").catch(async () => fail(`#state did not turn cancelled: "${await state(page)}"`));
    if (dialogs.length !== 1 || dialogs[0].type !== "confirm") {
      fail(`cancel asked for confirmation ${JSON.stringify(dialogs)}, expected one confirm()`);
    }
    return { dialogs };
  },
};

if (!scenarios[scenario]) {
  console.error(`drive.mjs: no scenario "${scenario}"; known: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true });
try {
  console.log(JSON.stringify(await scenarios[scenario](browser)));
} catch (e) {
  console.error(e.message ?? String(e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
