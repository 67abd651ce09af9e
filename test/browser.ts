// Debian's chromium, headless, driven by puppeteer-core (no browser download); screenshots go to test/artifacts/.
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";

export const ARTIFACTS = join(new URL("..", import.meta.url).pathname, "test", "artifacts");

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
