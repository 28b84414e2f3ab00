// hostel's browser tests: real headless Chromium (Debian's, driven by playwright-core) against a
// running hostel daemon. The Rust tests (crates/hostel-cli/tests/web.rs) set up the daemon and
// tenants, run one scenario each with `node web/tests/browser.mjs SCENARIO`, and check what the
// scenario did from outside (over SSH, in the audit log). A scenario prints one JSON line of
// findings and timings; any failed step throws, and the exit code is 1.
//
// Environment: HOSTEL_URL (http://127.0.0.1:PORT), HOSTEL_TENANT, HOSTEL_PASSWORD,
// HOSTEL_OTHER (another tenant), HOSTEL_ADMIN_TOKEN, HOSTEL_SHOTS (a folder for screenshots),
// CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const base = env("HOSTEL_URL");
const shots = process.env.HOSTEL_SHOTS || "/tmp/hostel-shots";
mkdirSync(shots, { recursive: true });

// As the machine's own probe starts it: no sandbox as root, nothing that calls other hosts.
// `hostel.test` and every name below it resolve to this machine (apps' own origins).
// With HOSTEL_ATTACK_URL, hostel's and that page's origins count as secure contexts, as they
// would over HTTPS: service workers exist only there.
async function launch() {
  const args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP hostel.test 127.0.0.1, MAP *.hostel.test 127.0.0.1"];
  if (process.env.HOSTEL_ATTACK_URL) {
    const attack = new URL(process.env.HOSTEL_ATTACK_URL).origin;
    args.push(`--unsafely-treat-insecure-origin-as-secure=${base},${attack}`);
  }
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args,
  });
}

function check(ok, what) {
  if (!ok) throw new Error(what);
}

async function signIn(page, name, password) {
  await page.goto(`${base}/login`);
  await page.getByLabel("Tenant").fill(name);
  await page.getByLabel("Password").fill(password);
  await Promise.all([
    page.waitForURL(`${base}/portal`),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
}

// The terminal's screen, one string per row, trailing blanks cut.
async function screenLines(page) {
  return page.evaluate(() => {
    const b = window.hostelTerminal.buffer.active;
    const out = [];
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
    return out;
  });
}

async function waitForLine(page, want, timeout = 20000) {
  const until = Date.now() + timeout;
  for (;;) {
    const lines = await screenLines(page);
    if (lines.some((l) => (typeof want === "string" ? l.trim() === want : want.test(l)))) return lines;
    if (Date.now() > until) throw new Error(`no line ${want} on the terminal:\n${lines.filter(Boolean).join("\n")}`);
    await page.waitForTimeout(50);
  }
}

async function waitForPrompt(page, timeout = 60000) {
  return waitForLine(page, /\$ ?$/, timeout);
}

// Clicks the portal's link to an app and checks that the gateway answered with its page, not
// an error page (whose text then says why).
async function openApp(page, title) {
  const [response] = await Promise.all([
    page.waitForNavigation({ timeout: 180000 }),
    page.getByRole("link", { name: title }).click(),
  ]);
  if (response.status() !== 200) {
    throw new Error(`${title} answered ${response.status()}: ${await page.locator("main").innerText().catch(() => "")}`);
  }
}

// Types `line` and Enter into the terminal.
async function run(page, line) {
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

const scenarios = {
  // A shared browser (a lab machine): tenant HOSTEL_EVIL opens its own page at
  // HOSTEL_ATTACK_URL, which tries to register a service worker for hostel's whole origin and to
  // plant cookies, then signs out; tenant HOSTEL_TENANT signs in on the same browser. Reports
  // what the page managed and what the victim's sign-in met; the Rust test checks the
  // attacker's server log for the password.
  async "origin-attack"(browser) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page, env("HOSTEL_EVIL"), env("HOSTEL_PASSWORD"));
    await page.goto(env("HOSTEL_ATTACK_URL"), { timeout: 120000 });
    await page.waitForFunction(() => window.attack !== undefined, null, { timeout: 60000 });
    const attack = await page.evaluate(() => window.attack);
    const attackOrigin = new URL(page.url()).origin;
    check(await page.evaluate(() => window.isSecureContext && "serviceWorker" in navigator),
      "the attacker's page has no service workers to try: the test would prove nothing");
    // Time for a worker to install and take control, had it registered.
    await page.waitForTimeout(1500);
    await page.goto(`${base}/portal`);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${base}/login`);
    check(await page.evaluate(() => window.isSecureContext), "hostel's page is no secure context");
    const controlled = await page.evaluate(() => navigator.serviceWorker.controller !== null);
    await page.getByLabel("Tenant").fill(env("HOSTEL_TENANT"));
    await page.getByLabel("Password").fill(env("HOSTEL_PASSWORD"));
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    const landed = new URL(page.url()).pathname;
    const heading = await page.locator("h1").first().innerText().catch(() => "");
    const cookies = (await context.cookies(base)).map((c) => `${c.name}=${c.value.length > 12 ? "…" : c.value}; path=${c.path}`);
    return { attack, attack_origin: attackOrigin, controlled, landed, heading, cookies };
  },

  // Wrong password refused, right one signs in, sign-out ends the session.
  async login(browser) {
    const page = await browser.newPage();
    await page.goto(`${base}/login`);
    await page.getByLabel("Tenant").fill(env("HOSTEL_TENANT"));
    await page.getByLabel("Password").fill("not the password at all");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "Wrong tenant name or password." }).waitFor();
    await page.screenshot({ path: `${shots}/login-refused.png` });
    await signIn(page, env("HOSTEL_TENANT"), env("HOSTEL_PASSWORD"));
    await page.getByRole("heading", { name: env("HOSTEL_TENANT") }).waitFor();
    await page.getByRole("link", { name: "Terminal" }).waitFor();
    await page.screenshot({ path: `${shots}/portal.png`, fullPage: true });
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${base}/login`);
    const back = await page.goto(`${base}/portal`);
    check(back.url() === `${base}/login`, `after sign-out /portal went to ${back.url()}`);
    return {};
  },

  // Sign in, open the terminal (waking the workspace if stopped), type, resize, UTF-8,
  // paste, copy, and a new shell after `exit`.
  async terminal(browser) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 600 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    const page = await context.newPage();
    await signIn(page, env("HOSTEL_TENANT"), env("HOSTEL_PASSWORD"));
    const started = Date.now();
    await page.getByRole("link", { name: "Terminal" }).click();
    await page.waitForSelector("#terminal[data-state=connected]", { timeout: 120000 });
    await waitForPrompt(page, 120000);
    const loginToPrompt = Date.now() - started;

    await run(page, "echo hi");
    await waitForLine(page, "hi");

    const before = await page.evaluate(() => [window.hostelTerminal.cols, window.hostelTerminal.rows]);
    await page.setViewportSize({ width: 1400, height: 900 });
    await page.waitForFunction((b) => window.hostelTerminal.cols !== b[0], before);
    const after = await page.evaluate(() => [window.hostelTerminal.cols, window.hostelTerminal.rows]);
    await run(page, "stty size");
    await waitForLine(page, `${after[1]} ${after[0]}`);

    await run(page, "echo 'héllo wörld ✓ π≈3.14'");
    await waitForLine(page, "héllo wörld ✓ π≈3.14");

    await page.evaluate(() => navigator.clipboard.writeText("echo pasted-$((6*7))"));
    await page.keyboard.press("Control+Shift+V");
    await page.keyboard.press("Enter");
    await waitForLine(page, "pasted-42");
    await page.evaluate(() => window.hostelTerminal.selectAll());
    await page.keyboard.press("Control+Shift+C");
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    check(copied.includes("pasted-42"), `copied text lacks pasted-42: ${copied.slice(0, 200)}`);

    await run(page, "exit");
    await page.getByRole("status").filter({ hasText: "press Enter" }).waitFor();
    await page.keyboard.press("Enter");
    await page.waitForSelector("#terminal[data-state=connected]");
    await run(page, "echo again-$((1+1))");
    await waitForLine(page, "again-2");
    await page.screenshot({ path: `${shots}/terminal.png` });

    // Keystroke echo: a key into the terminal until the shell's echo is on screen, 30 times.
    const echo = await page.evaluate(async () => {
      const term = window.hostelTerminal;
      const times = [];
      for (let i = 0; i < 30; i++) {
        const t0 = performance.now();
        await new Promise((resolve) => {
          const d = term.onWriteParsed(() => { d.dispose(); resolve(); });
          term.input("x");
        });
        times.push(performance.now() - t0);
      }
      term.input("\u0015");
      times.sort((a, b) => a - b);
      return { median: times[15], p90: times[27] };
    });
    return { cols_rows_before: before, cols_rows_after: after, login_to_prompt_ms: loginToPrompt,
             echo_median_ms: echo.median, echo_p90_ms: echo.p90 };
  },

  // Signed in as one tenant, another's terminal, apps and socket are refused.
  async isolation(browser) {
    const page = await browser.newPage();
    await signIn(page, env("HOSTEL_TENANT"), env("HOSTEL_PASSWORD"));
    const other = env("HOSTEL_OTHER");
    const statuses = {};
    for (const path of [`/u/${other}/terminal/`, `/u/${other}/jupyter/lab`, `/u/${other}/code/`,
                        `/u/${other}/desktop/vnc.html`]) {
      const r = await page.goto(`${base}${path}`);
      statuses[path] = r.status();
      check(r.status() === 403, `${path} answered ${r.status()}`);
    }
    const ws = await page.evaluate((url) => new Promise((resolve) => {
      const s = new WebSocket(url);
      s.onopen = () => resolve("open");
      s.onerror = () => resolve("refused");
    }), `${base.replace("http", "ws")}/u/${other}/terminal/ws`);
    check(ws === "refused", `the other tenant's terminal socket was ${ws}`);
    return { statuses, socket: ws };
  },

  // JupyterLab: first paint, a notebook cell that writes a file into the home.
  async jupyter(browser) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await signIn(page, env("HOSTEL_TENANT"), env("HOSTEL_PASSWORD"));
    const started = Date.now();
    await openApp(page, "JupyterLab");
    await page.locator("#jp-main-dock-panel").waitFor({ timeout: 180000 });
    const firstPaint = Date.now() - started;
    // A fresh layout (JupyterLab restores the last one), so the launcher shows.
    await page.goto(`${base}/u/${env("HOSTEL_TENANT")}/jupyter/lab?reset`);
    const card = page.locator('.jp-LauncherCard[data-category="Notebook"]').first();
    await card.waitFor({ timeout: 60000 });
    await page.screenshot({ path: `${shots}/jupyterlab.png` });
    await card.click();
    const cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first();
    await cell.waitFor({ timeout: 60000 });
    // The kernel is up and connected when the status bar says so.
    await page.getByText(/Python 3 \(ipykernel\) \| Idle/).waitFor({ timeout: 60000 });
    await cell.click();
    await page.keyboard.type('open("from-jupyter.txt", "w").write("written in JupyterLab")');
    await page.keyboard.press("Shift+Enter");
    await page.locator(".jp-OutputArea-output", { hasText: "21" }).first().waitFor({ timeout: 60000 });
    await page.screenshot({ path: `${shots}/jupyterlab-notebook.png` });
    return { first_paint_ms: firstPaint };
  },

  // VS Code: the workbench shows the home, with a file SSH put there.
  async code(browser) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await signIn(page, env("HOSTEL_TENANT"), env("HOSTEL_PASSWORD"));
    const started = Date.now();
    await openApp(page, "VS Code");
    const file = page.locator(".monaco-list-row", { hasText: env("HOSTEL_FILE") }).first();
    await file.waitFor({ timeout: 180000 });
    const firstPaint = Date.now() - started;
    await page.screenshot({ path: `${shots}/vscode.png` });
    return { first_paint_ms: firstPaint };
  },

  // The desktop: noVNC connects through the gateway and XFCE paints its screen.
  async desktop(browser) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // This browser runs on the engine's host: an interface the engine adds or changes there
    // (a workspace's veth getting its IPv6 address) makes Chromium abort the requests in
    // flight with ERR_NETWORK_CHANGED, which a browser on another machine never sees. noVNC
    // loads some thirty modules at once; if one was aborted so, the page is reloaded once.
    const failed = [];
    page.on("requestfailed", (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
    await signIn(page, env("HOSTEL_TENANT"), env("HOSTEL_PASSWORD"));
    const started = Date.now();
    await openApp(page, "Desktop");
    const canvas = page.locator("#noVNC_container canvas");
    const aborted = () => failed.some((f) => f.endsWith("net::ERR_NETWORK_CHANGED"));
    let reloads = 0;
    await page.waitForLoadState("load");
    if (aborted()) {
      reloads += 1;
      failed.length = 0;
      await page.reload();
    }
    try {
      await canvas.waitFor({ timeout: 120000 });
    } catch (e) {
      if (!aborted()) throw new Error(`${e.message}\nfailed requests:\n${failed.join("\n")}`);
      reloads += 1;
      await page.reload();
      await canvas.waitFor({ timeout: 120000 });
    }
    // Painted: the canvas holds many colours (a blank or black screen has one or two).
    const colours = () => page.evaluate(() => {
      const c = document.querySelector("#noVNC_container canvas");
      if (!c || !c.width) return 0;
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      return seen.size;
    });
    const until = Date.now() + 120000;
    let n = 0;
    while ((n = await colours()) < 20) {
      check(Date.now() < until, `the desktop did not paint (${n} colours)`);
      await page.waitForTimeout(200);
    }
    const firstPaint = Date.now() - started;
    await page.waitForTimeout(3000);
    await page.screenshot({ path: `${shots}/desktop.png` });
    return { first_paint_ms: firstPaint, colours: await colours(), reloads, failed_requests: failed.length };
  },

  // The admin dashboard: sign in with a token, create a tenant, see it run, purge it, and
  // find both in the audit log.
  async admin(browser) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const name = env("HOSTEL_NEW");
    await page.goto(`${base}/admin`);
    await page.getByLabel("API token").fill("hostel_not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "Unknown or revoked token." }).waitFor();
    await page.getByLabel("API token").fill(env("HOSTEL_ADMIN_TOKEN"));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Tenants" }).waitFor();

    const form = page.locator('form[action="/admin/tenants"]');
    await form.getByLabel("Name", { exact: true }).fill(name);
    await form.getByLabel("SSH public key").fill(env("HOSTEL_KEY"));
    await form.getByLabel("Memory", { exact: true }).fill("256M");
    await form.getByLabel("Disk", { exact: true }).fill("256M");
    await form.getByRole("button", { name: "Create" }).click();
    await page.getByRole("status").filter({ hasText: `created ${name}` }).waitFor({ timeout: 60000 });
    const row = page.locator(`tr[data-tenant="${name}"]`);
    await row.locator(".state", { hasText: "running" }).waitFor();
    await page.waitForSelector("body[data-usage=loaded]");
    // Live usage replaces the page's "- / limit" (a fresh workspace may use under 1 MiB).
    await row.locator(".memory", { hasText: /^\d[\d.]*(B|KiB|MiB|GiB) \// }).waitFor({ timeout: 30000 });
    await page.screenshot({ path: `${shots}/admin.png`, fullPage: true });

    await row.getByRole("button", { name: "Stop" }).click();
    await page.getByRole("status").filter({ hasText: `stopped ${name}` }).waitFor({ timeout: 60000 });
    await page.locator(`tr[data-tenant="${name}"] .state`, { hasText: "stopped" }).waitFor();

    await page.locator(`tr[data-tenant="${name}"] summary`).click();
    await page.locator(`tr[data-tenant="${name}"] input[name=confirm]`).check();
    await page.locator(`tr[data-tenant="${name}"]`).getByRole("button", { name: "Purge" }).click();
    await page.getByRole("status").filter({ hasText: `purged ${name}` }).waitFor({ timeout: 60000 });
    check(await page.locator(`tr[data-tenant="${name}"]`).count() === 0, "the purged tenant is still listed");

    const filter = page.locator('form[action="/admin"]');
    await filter.getByLabel("Tenant", { exact: true }).fill(name);
    await filter.getByRole("button", { name: "Filter" }).click();
    const kinds = await page.locator("#audit tbody tr td:nth-child(2)").allTextContents();
    for (const k of ["tenant.create.v1", "workspace.stop.v1", "tenant.purge.v1"]) {
      check(kinds.includes(k), `the audit filter for ${name} lacks ${k}: ${kinds.join(", ")}`);
    }
    const actors = await page.locator("#audit tbody tr td:nth-child(3)").allTextContents();
    return { audit_kinds: kinds, actors };
  },

  // The dashboard's charts: signs in with HOSTEL_ADMIN_TOKEN, opens /admin (the last hour) and
  // /admin?range=7d, and reports for each what it drew and how long it took (Navigation and
  // Paint Timing): `hostel bench dashboard` and the web test use it.
  async dashboard(browser) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${base}/admin`);
    await page.getByLabel("API token").fill(env("HOSTEL_ADMIN_TOKEN"));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Tenants" }).waitFor();
    const out = {};
    for (const [key, path] of [["hour", "/admin"], ["week", "/admin?range=7d"]]) {
      await page.goto(`${base}${path}`, { waitUntil: "load" });
      out[key] = await page.evaluate(() => {
        const n = performance.getEntriesByType("navigation")[0];
        const fcp = performance.getEntriesByName("first-contentful-paint")[0];
        const box = document.querySelector("#host-charts svg").getBoundingClientRect();
        return {
          bytes: n.decodedBodySize,
          response_ms: n.responseEnd - n.requestStart,
          first_paint_ms: fcp ? fcp.startTime : null,
          dom_ready_ms: n.domContentLoadedEventEnd - n.startTime,
          load_ms: n.loadEventEnd - n.startTime,
          host_charts: document.querySelectorAll("#host-charts figure.chart").length,
          rows: document.querySelectorAll("#tenants tbody tr").length,
          sparks: document.querySelectorAll("#tenants td.sparks svg").length,
          lines: document.querySelectorAll("figure.chart polyline").length,
          chart_px: [Math.round(box.width), Math.round(box.height)],
        };
      });
    }
    await page.goto(`${base}/admin`, { waitUntil: "load" });
    await page.screenshot({ path: `${shots}/admin-charts.png` });
    const h = out.hour;
    check(h.host_charts === 5, `${h.host_charts} host charts, not 5`);
    check(h.sparks === 2 * h.rows, `${h.sparks} tenant charts for ${h.rows} tenants`);
    check(h.chart_px[0] > 100 && h.chart_px[1] > 20, `a host chart is drawn at ${h.chart_px}`);
    return out;
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`usage: node browser.mjs ${Object.keys(scenarios).join("|")}`);
  process.exit(64);
}
const browser = await launch();
try {
  const result = await scenarios[name](browser);
  console.log(JSON.stringify({ scenario: name, ...result }));
} catch (e) {
  console.error(`${name}: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
