// PLACEHOLDER: the agent entry (issue 5) replaces this.
process.stderr.write('install-cni: not implemented yet\n');
process.exitCode = 1;
