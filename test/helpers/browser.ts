// Debian's chromium, headless, driven by puppeteer-core (no browser download); screenshots go to test/artifacts/.
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";

export const ARTIFACTS = join(new URL("../..", import.meta.url).pathname, "test", "artifacts");

/** The flags keep chromium off the network this machine does not have; `profile` is a fresh directory. */
export function launchChromium(profile: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      `--user-data-dir=${profile}`,
    ],
  });
}

/**
 * A page that records what a self-contained page must never do: requests to another origin than
 * `origin` (data: URLs aside), and script errors or CSP violations, less console errors matching
 * `expected` (chromium logs the API's refusals as failed resources).
 */
export async function watchedPage(browser: Browser, origin: string, expected: RegExp) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const foreign: string[] = [];
  const problems: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith("data:")) foreign.push(r.url());
  });
  page.on("console", (m) => {
    if (m.type() === "error" && !expected.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  return { page, foreign, problems };
}
