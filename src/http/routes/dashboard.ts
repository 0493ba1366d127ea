/**
 * The dashboard: one HTML page, two scripts (the app and its API client) and one stylesheet, read once from `src/http/dashboard/` and served
 * from memory. Only the files in the fixed table below exist; a request for anything else under `/assets/` is a
 * 404, so no part of a URL ever becomes a file path. The page loads without the token (it holds no data).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ErrorCodes, TroupeError } from '../../errors.ts';

interface Asset {
  file: string;
  type: string;
}

const ASSETS: Record<string, Asset> = {
  'app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  'api.js': { file: 'api.js', type: 'text/javascript; charset=utf-8' },
  'app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function load(file: string): Buffer {
  return readFileSync(new URL(`../dashboard/${file}`, import.meta.url));
}

/** Registers `/` and `/assets/:file` (why: the dashboard ships with the server, no build step). */
export function registerDashboardRoutes(app: FastifyInstance): void {
  const page = load('index.html');
  const assets = new Map(Object.entries(ASSETS).map(([name, a]) => [name, { body: load(a.file), type: a.type }]));

  app.get('/', { config: { public: true } }, async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').header('content-security-policy', CSP).header('cache-control', 'no-cache').send(page);
  });

  app.get<{ Params: { file: string } }>('/assets/:file', { config: { public: true } }, async (request, reply) => {
    const asset = Object.hasOwn(ASSETS, request.params.file) ? assets.get(request.params.file) : undefined;
    if (!asset) throw new TroupeError(ErrorCodes.NOT_FOUND, 'No such asset');
    return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
  });
}
