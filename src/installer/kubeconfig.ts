// Pure: the plugin kubeconfig (§1.6), byte-identical to upstream's goldens (YAML, keys sorted).

export interface KubeconfigInput {
  readonly protocol: string;
  readonly host: string;
  readonly port: string;
  /** Raw CA bytes, or undefined with skipTlsVerify. */
  readonly ca: Uint8Array | undefined;
  readonly skipTlsVerify: boolean;
  /** Exact token file contents (not trimmed). */
  readonly token: string;
}

/** A YAML scalar as Go's yaml encoder writes it: plain when safe, else double-quoted. */
function scalar(value: string): string {
  const plain =
    value !== '' &&
    /^[A-Za-z0-9_./+=-][A-Za-z0-9_./+=:[\]\- ]*$/.test(value) &&
    !/[ :]$/.test(value) &&
    !/: /.test(value) &&
    !/^(true|false|yes|no|on|off|y|n|null|~|[-+]?[0-9][0-9_.eE+-]*)$/i.test(value);
  return plain ? value : JSON.stringify(value);
}

export function serverUrl(protocol: string, host: string, port: string): string {
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${protocol}://${bracketed}:${port}`;
}

export function renderKubeconfig(input: KubeconfigInput, redact = false): string {
  const cluster = input.skipTlsVerify
    ? '    insecure-skip-tls-verify: true\n'
    : `    certificate-authority-data: ${redact ? 'REDACTED' : Buffer.from(input.ca ?? new Uint8Array()).toString('base64')}\n`;
  return (
    'apiVersion: v1\n' +
    'clusters:\n' +
    '- cluster:\n' +
    cluster +
    `    server: ${scalar(serverUrl(input.protocol, input.host, input.port))}\n` +
    '  name: local\n' +
    'contexts:\n' +
    '- context:\n' +
    '    cluster: local\n' +
    '    user: istio-cni\n' +
    '  name: istio-cni-context\n' +
    'current-context: istio-cni-context\n' +
    'kind: Config\n' +
    'users:\n' +
    '- name: istio-cni\n' +
    '  user:\n' +
    `    token: ${redact ? 'REDACTED' : scalar(input.token)}\n`
  );
}
