// `npm run app [-- --port N]`: build the app (build.ts) into dist/app and serve it on 127.0.0.1
// (a secure context, which WebGPU needs; nothing is reachable from other machines). Prints the URL.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { buildApp } from './build.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.bin': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

/** Serve the files of `dir` (GET only, no listing, nothing outside it) on 127.0.0.1:port (0: any free port). */
export async function serveDir(dir: string, port = 0): Promise<{ server: Server; url: string }> {
  const root = resolve(dir);
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (req.method !== 'GET' || !file.startsWith(root + sep) || !TYPES[extname(file)]) {
      res.writeHead(req.method !== 'GET' ? 405 : 404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)], 'cache-control': 'no-cache' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ok);
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

function parsePort(argv: string[]): number {
  const i = argv.findIndex((a) => a === '--port' || a.startsWith('--port='));
  if (i < 0) return 8080;
  const v = argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`usage: npm run app [-- --port N]   (N: 0-65535, 0 picks a free port; got '${v ?? ''}')`);
    process.exit(2);
  }
  return n;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const unknown = argv.filter((a, i) => !(a === '--port' || a.startsWith('--port=') || argv[i - 1] === '--port'));
  if (unknown.length) {
    console.error(`npm run app: unknown argument ${unknown[0]}\nusage: npm run app [-- --port N]`);
    process.exit(2);
  }
  const port = parsePort(argv);
  const out = fileURLToPath(new URL('../../dist/app/', import.meta.url));
  const t0 = performance.now();
  await buildApp(out);
  const { url } = await serveDir(out, port).catch((e: NodeJS.ErrnoException) => {
    console.error(e.code === 'EADDRINUSE' ? `port ${port} is in use: npm run app -- --port N` : e.message);
    process.exit(1);
  });
  console.log(`backlight app built into ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`serving on ${url}  (WebGPU: a recent Chrome/Edge, or Firefox/Safari with WebGPU on; Ctrl-C stops)`);
}
