/**
 * Where Chromium is and how to start it, for the playwright-core tests and vitest's browser mode. No
 * browser is ever downloaded: the system's Chromium is used (Debian: `apt-get install -y chromium`).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** `CHROMIUM_PATH` when set, else the first of these that exists. The first skips Debian's shell wrapper. */
const CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** Flags that keep a headless Chromium quiet and off the internet. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const INSTALL_HINT =
  'The browser tests need Chromium and found none. Install it (Debian/Ubuntu: `apt-get update && apt-get install -y chromium`), ' +
  `or point CHROMIUM_PATH at a Chromium or Chrome binary. Looked in: ${CANDIDATES.join(', ')}.`;

/** The Chromium binary, or undefined when there is none. */
export function findChromium(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return CANDIDATES.find((path) => existsSync(path));
}

/** The Chromium binary; throws an error that says how to install it when there is none. */
export function chromiumPath(): string {
  const path = findChromium();
  if (!path) throw new Error(INSTALL_HINT);
  return path;
}

/** Launches a headless Chromium with a fresh profile. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
}
