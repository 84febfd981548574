// PLACEHOLDER: the plugin entry (issue 3) replaces this.
process.stderr.write('istio-cni: not implemented yet\n');
process.exitCode = 1;
