// Shared by the real-browser tests: Debian's headless Chromium (/usr/bin/chromium, installed by
// scripts/setup.sh) driven through playwright-core, with WebGPU on Chromium's SwiftShader, and a
// tiny 127.0.0.1 server (a secure context, so navigator.gpu exists; about:blank has none).
//
// Set BACKLIGHT_CHROMIUM to use another Chromium binary; BACKLIGHT_SKIP_BROWSER=1 skips the files.
import { chromium, type Browser } from 'playwright-core';
import { createServer, type RequestListener, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export const CHROMIUM = process.env.BACKLIGHT_CHROMIUM ?? '/usr/bin/chromium';
export const SKIP_BROWSER = process.env.BACKLIGHT_SKIP_BROWSER === '1';

// Found by experiment with Debian's chromium 156 in a container without a GPU: only
// --enable-unsafe-webgpu is strictly needed (and a secure-context page: http://127.0.0.1, not
// about:blank); Chromium then picks its SwiftShader adapter by itself. The rest keep a headless
// run quiet and independent of the machine (no sandbox as root, no network, no GPU process
// sandbox, SwiftShader even where a GPU exists).
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-angle=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Launch headless Chromium with WebGPU; a missing binary is an error that says what to install. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: run \`bash scripts/setup.sh\` (Debian: apt-get install chromium), set BACKLIGHT_CHROMIUM, or BACKLIGHT_SKIP_BROWSER=1`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** Serve `handler` on 127.0.0.1 at a free port; returns the server and its base URL. */
export async function serveLocal(handler: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/` };
}

export function closeServer(server: Server | undefined): Promise<void> {
  return new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
}
