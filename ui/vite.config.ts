import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL("..", import.meta.url));
// The app version the page writes into a saved workflow file: the Python package's, read from pyproject.toml.
const appVersion = /^version\s*=\s*"([^"]+)"/m.exec(readFileSync(`${root}pyproject.toml`, "utf8"))?.[1] ?? "0.0.0";

export default defineConfig({
  plugins: [react()],
  base: "/ui/",
  define: { __APP_VERSION__: JSON.stringify(appVersion) },
  // rjsf and ajv make one ~860 kB chunk (~280 kB gzipped): fine for an internal tool served locally.
  build: { outDir: `${root}openautoglm/serve/ui_dist`, emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
