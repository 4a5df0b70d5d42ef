#!/usr/bin/env node
// End-to-end check of the operators' console (/ui) in a real browser:
// headless Chromium driven by playwright-core, logging in with the admin
// token as an operator would. Prints one `ok - ...` / `not ok - ...` line
// per check; exit code 1 if any failed.
//
//   E2E_ADMIN_TOKEN=... node console_client.mjs BASE_URL --listed ID --delete ID
//        --screenshot FILE [--chromium /usr/bin/chromium] [--node-modules DIR]
//
// --listed: a session created through the API, which the list must show;
//           its page lists its tools, and one is tried from there.
// --delete: a session to delete from the console, confirming on its delete
//           page; it must disappear.
// The admin token comes from the environment, never the command line.

import { join } from "node:path";
import { pathToFileURL } from "node:url";

function parseArgs(argv) {
  const args = { chromium: "/usr/bin/chromium", nodeModules: "" };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--listed") args.listed = argv[++i];
    else if (a === "--delete") args.delete = argv[++i];
    else if (a === "--screenshot") args.screenshot = argv[++i];
    else if (a === "--chromium") args.chromium = argv[++i];
    else if (a === "--node-modules") args.nodeModules = argv[++i];
    else rest.push(a);
  }
  if (rest.length !== 1 || !args.listed || !args.delete || !args.screenshot) {
    console.error("usage: console_client.mjs BASE_URL --listed ID --delete ID --screenshot FILE [--chromium PATH] [--node-modules DIR]");
    process.exit(2);
  }
  args.base = rest[0];
  return args;
}

const args = parseArgs(process.argv.slice(2));
const adminToken = process.env.E2E_ADMIN_TOKEN || "";
if (!adminToken) {
  console.error("console_client.mjs: set E2E_ADMIN_TOKEN");
  process.exit(2);
}
const modules = args.nodeModules || process.env.E2E_NODE_MODULES || ".e2e/node/node_modules";
const { chromium } = await import(pathToFileURL(join(modules, "playwright-core", "index.mjs")).href);

let failed = 0;
const ok = (name) => console.log(`ok - ${name}`);
const notOk = (name, why) => {
  failed++;
  console.log(`not ok - ${name}: ${String(why).replace(/\s+/g, " ").slice(0, 300)}`);
};
const check = (name, pass, why) => (pass ? ok(name) : notOk(name, why));
const noToken = (html) => !html.includes(adminToken);

const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  // Root in a container: Chromium's sandbox needs user namespaces it may not have.
  args: ["--no-sandbox"],
  timeout: 60_000,
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);

  const first = await page.goto(`${args.base}/ui`);
  check("console: /ui without a login answers 401 with the login form",
    first.status() === 401 && (await page.locator('input[name="token"]').count()) === 1,
    `status ${first.status()}`);

  await page.fill('input[name="token"]', adminToken);
  await Promise.all([page.waitForURL(`${args.base}/ui`), page.click('button:has-text("Log in")')]);
  const list = await page.content();
  check("console: logging in with the admin token opens the session list",
    (await page.title()).startsWith("Sessions"), await page.title());
  check("console: a session created through the API is listed",
    list.includes(`/ui/session/${args.listed}`), "not on the page");
  const cookies = await page.context().cookies();
  const login = cookies.find((c) => c.name === "mcp_mux_console");
  check("console: the login cookie is HttpOnly, SameSite=Strict and not the admin token",
    login && login.httpOnly && login.sameSite === "Strict" && login.value !== adminToken && !login.value.includes(adminToken),
    JSON.stringify(login && { httpOnly: login.httpOnly, sameSite: login.sameSite }));

  await page.screenshot({ path: args.screenshot, fullPage: true });

  await page.click(`a[href="/ui/session/${args.listed}"]`);
  const detail = await page.content();
  check("console: the session page shows its backends and their circuits",
    detail.includes("<code>everything</code>") && detail.includes('class="state closed"'), "no backend row");
  check("console: the session page lists its tools, with the backend's own names",
    detail.includes("<code>everything__echo</code>")
      && detail.includes('<code>everything</code> <span class="muted">as</span> <code>echo</code>'),
    "no everything__echo row");
  check("console: the session page shows the tool mode and the backends' state",
    detail.includes("<tr><th>Tool mode</th><td>direct</td></tr>") && detail.includes('<span class="state">ready</span>'),
    "no tool mode or backend state");

  // Try a tool: the form calls it as a client would, and shows the result
  // and the call's audit record.
  await page.selectOption('select[name="tool"]', "everything__echo");
  await page.fill('textarea[name="arguments"]', '{"message": "hi from the console"}');
  await page.click('button:has-text("Call the tool")');
  const tried = await page.content();
  check("console: trying a tool shows its result",
    (await page.title()).startsWith("Tool call") && tried.includes("Echo: hi from the console"),
    `${await page.title()}: ${tried.slice(0, 200)}`);
  check("console: trying a tool shows the call's audit record",
    /<td>everything<\/td><td><code>everything__echo<\/code><\/td><td>ok<\/td>/.test(tried),
    "no audit record of the call");
  await page.fill('textarea[name="arguments"]', '{"message": ');
  await page.click('button:has-text("Call the tool")');
  const badJson = await page.content();
  check("console: arguments that are not JSON are refused, naming the field",
    badJson.includes('<p class="error">arguments: is not valid JSON'), "no refusal naming arguments");

  await page.goto(`${args.base}/ui/registry`);
  const registry = await page.content();
  check("console: the registry page lists the servers and no backend URL",
    registry.includes("<code>everything-stdio</code>") && !registry.includes("127.0.0.1:"), "missing or shows a URL");

  await page.goto(`${args.base}/ui/create-session`);
  await page.check('input[name="servers"][value="everything"]');
  await page.check('input[name="require_token"]');
  await page.click('button:has-text("Create the session")');
  const created = await page.content();
  check("console: the create form makes a session and shows its token once",
    (await page.title()).startsWith("Session created") && /<code>mmx_[A-Za-z0-9_-]+<\/code>/.test(created),
    await page.title());

  // A curated session from the form: name, labels, tool rules, tool mode
  // and rate limit.
  await page.goto(`${args.base}/ui/create-session`);
  await page.fill('input[name="name"]', "e2e curated <console>");
  await page.fill('textarea[name="labels"]', "team=e2e\nflow=console");
  await page.check('input[name="servers"][value="everything"]');
  await page.click('summary:has-text("Tool rules for everything")');
  await page.fill('input[name="tools.everything.allow"]', "echo, get-sum");
  await page.fill('textarea[name="tools.everything.rename"]', "echo=say");
  await page.fill('textarea[name="tools.everything.description"]', "get-sum=Adds two numbers, from the console.");
  await page.fill('input[name="rate_limit"]', "20");
  await page.fill('input[name="tools.everything.deny"]', "");
  await page.selectOption('select[name="tool_mode"]', "direct");
  // First a rename the check refuses: the form comes back, naming the field.
  await page.fill('textarea[name="tools.everything.rename"]', "echo=not a name");
  await page.click('button:has-text("Create the session")');
  const refusedRule = await page.content();
  check("console: a bad rule on the create form is refused, naming its field",
    refusedRule.includes('<p class="error">tools.everything.rename.echo: makes the tool name'),
    (await page.title()));
  await page.fill('textarea[name="tools.everything.rename"]', "echo=say");
  await page.click('button:has-text("Create the session")');
  const curated = await page.content();
  const curatedId = (curated.match(/href="\/ui\/session\/([0-9a-f-]{36})"/) || [])[1];
  check("console: the create form makes a curated session", Boolean(curatedId), await page.title());
  let curatedPage = "";
  if (curatedId) {
    await page.click(`a[href="/ui/session/${curatedId}"]`);
    curatedPage = await page.content();
    check("console: the curated session's page shows its renamed and described tools and which rule did it",
      curatedPage.includes("<code>everything__say</code>")
        && curatedPage.includes("<code>tools.everything.rename.echo</code>")
        && curatedPage.includes("Adds two numbers, from the console.")
        && curatedPage.includes("<code>tools.everything.description.get-sum</code>")
        && !curatedPage.includes("<code>everything__echo</code>")
        && !curatedPage.includes("<code>everything__get-env</code>"),
      "tools or rules missing");
    check("console: the curated session's page shows its name and labels",
      curatedPage.includes("<tr><th>Name</th><td>e2e curated &lt;console&gt;</td></tr>")
        && curatedPage.includes("<code>flow=console</code> <code>team=e2e</code>"),
      "no name or labels");
    check("console: the curated session's page shows its rules, mode and rate limit",
      curatedPage.includes("<td><code>echo</code> <code>get-sum</code></td>")
        && curatedPage.includes("<tr><th>Rate limit</th><td>20 requests a second</td></tr>")
        && curatedPage.includes("<tr><th>Tool mode</th><td>direct</td></tr>"),
      "rules, mode or rate missing");
  }

  // Filter the list by name, label and backend, with the filter form.
  let filtered = [];
  if (curatedId) {
    const listedIds = async () => {
      const html = await page.content();
      return [...html.matchAll(/<a href="\/ui\/session\/([0-9a-f-]{36})">/g)].map((m) => m[1]);
    };
    await page.goto(`${args.base}/ui`);
    const all = await listedIds();
    check("console: the list is newest first", all[0] === curatedId, all.slice(0, 3).join(" "));
    await page.fill('form.filter input[name="name"]', "CURATED");
    await page.click('form.filter button:has-text("Filter")');
    const byName = await listedIds();
    filtered.push(await page.content());
    check("console: filtering by name lists the named session only",
      byName.length === 1 && byName[0] === curatedId, byName.join(" "));
    await page.goto(`${args.base}/ui`);
    await page.fill('form.filter input[name="label"]', "team=e2e");
    await page.click('form.filter button:has-text("Filter")');
    const byLabel = await listedIds();
    filtered.push(await page.content());
    check("console: filtering by label lists the labelled session only",
      byLabel.length === 1 && byLabel[0] === curatedId && page.url().includes("label=team%3De2e"), `${page.url()} ${byLabel.join(" ")}`);
    await page.goto(`${args.base}/ui`);
    await page.selectOption('form.filter select[name="server"]', "everything");
    await page.fill('form.filter input[name="name"]', "no such name");
    await page.click('form.filter button:has-text("Filter")');
    const none = await page.content();
    filtered.push(none);
    check("console: a filter nothing passes says so", none.includes("No session passes the filter."), "no notice");
    await page.goto(`${args.base}/ui`);
    await page.selectOption('form.filter select[name="server"]', "everything");
    await page.click('form.filter button:has-text("Filter")');
    const byServer = await listedIds();
    check("console: filtering by backend lists the sessions over it",
      byServer.includes(args.listed) && byServer.includes(curatedId), byServer.join(" "));
  }

  // Delete, confirming on the delete page.
  await page.goto(`${args.base}/ui`);
  await page.click(`a[href="/ui/session/${args.delete}/delete"]`);
  const asked = await page.content();
  check("console: deleting asks first",
    (await page.title()).startsWith("Delete session") && (await page.locator('input[name="confirm"]').count()) === 1,
    await page.title());
  await Promise.all([
    page.waitForURL(`${args.base}/ui?deleted=${args.delete}`),
    page.click('button:has-text("Delete the session")'),
  ]);
  const after = await page.content();
  check("console: a confirmed delete says it is done",
    after.includes(`Session <code>${args.delete}</code> is deleted.`), "no notice");
  check("console: a deleted session disappears from the list",
    !after.includes(`/ui/session/${args.delete}`) && after.includes(`/ui/session/${args.listed}`), "still listed");

  check("console: no page shows the admin token",
    [list, detail, tried, badJson, registry, created, refusedRule, curated, curatedPage, ...filtered, asked, after].every(noToken),
    "the token is on a page");

  await Promise.all([page.waitForURL(`${args.base}/ui/login`), page.click('button:has-text("Log out")')]);
  const again = await page.goto(`${args.base}/ui`);
  check("console: after logging out, /ui asks for a login again", again.status() === 401, `status ${again.status()}`);
} catch (error) {
  notOk("console: the browser run ended", error.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
