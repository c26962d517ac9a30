// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "data/", "node_modules/", "src/db/generated/", "coverage/", "test/fixtures/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-properties": ["error", { object: "process", property: "env", message: "Only src/config.ts reads process.env." }],
    },
  },
  { files: ["src/config.ts", "scripts/**", "bench/**", "test/**", "prisma.config.ts"], rules: { "no-restricted-properties": "off" } },
  // The demo page's script runs in the browser, as a module, with no build step.
  {
    files: ["src/http/demo/**/*.js"],
    languageOptions: {
      sourceType: "module",
      globals: Object.fromEntries(["document", "window", "sessionStorage", "fetch", "EventSource", "location", "history", "setTimeout", "clearTimeout", "crypto", "CSS", "URLSearchParams", "console"].map((g) => [g, "readonly"])),
    },
  },
  // Small modules: a src file past 300 lines (blank lines and comments count) wants splitting.
  { files: ["src/**/*.ts"], rules: { "max-lines": ["error", { max: 300, skipBlankLines: false, skipComments: false }] } },
);
