import express, { RequestHandler } from 'express';
import fs from 'node:fs';
import path from 'node:path';

/**
 * No inline script or style, nothing from another origin: the dashboard's bundle is same-origin files only, and
 * every value from data is rendered as text by React, so an injected `<script>` or `onerror` has nowhere to run.
 * (Styles set through the DOM's style property, as the chart library does, are not inline styles to CSP.)
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Where `npm run build` puts the bundle (scripts/build-web.mjs): the same from src/ (tests) and dist/ (npm start). */
export const DASHBOARD_DIR = path.resolve(__dirname, '../../dist/public');

/**
 * Serves the dashboard at / and its hashed assets under /assets/. Mounted before the API's routes; anything it does
 * not have falls through to them (the app routes by URL hash, so no path needs an index.html fallback).
 */
export function dashboardMiddleware(dir = DASHBOARD_DIR): RequestHandler | undefined {
  if (!fs.existsSync(path.join(dir, 'index.html'))) return undefined;
  const files = express.static(dir, {
    index: 'index.html',
    redirect: false,
    setHeaders(res, file) {
      res.setHeader('content-security-policy', DASHBOARD_CSP);
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      // Hashed file names never change content; the page itself must be revalidated to pick up a new build.
      res.setHeader('cache-control', file.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable');
    },
  });
  return (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !(req.path === '/' || req.path.startsWith('/assets/'))) return next();
    files(req, res, next);
  };
}
