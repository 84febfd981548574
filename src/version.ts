// Kept equal to package.json's version by test/unit/version.test.ts (a constant keeps the plugin bundle free of
// any file read at start-up).
export const VERSION = '0.1.0';
