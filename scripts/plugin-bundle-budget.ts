// The plugin's bundle budget (DEVELOPERS.md "keep the plugin's hot path lean"): none of these packages may reach
// build/istio-cni.cjs. The build fails when one does (so CI enforces it, not only the bench), and the bench reports
// the same check beside its figures.
export const FORBIDDEN_IN_PLUGIN = ['@kubernetes/client-node', 'chokidar', 'commander', 'execa'] as const;

/** The forbidden packages among an esbuild metafile's input paths. */
export function forbiddenPackagesIn(inputs: readonly string[]): string[] {
  return FORBIDDEN_IN_PLUGIN.filter((name) =>
    inputs.some((input) => input.includes(`node_modules/${name}/`)),
  );
}
