import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// Hashed file names under assets/ are what nginx serves with an immutable cache.
export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    // Keep the SVG a separate hashed file (a real static asset), not an inlined data URI.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
});
