// The files of CNI_AGENT_RUN_DIR, a contract between the agent that writes or serves them and the plugin that reads
// or writes them (contract.md "Files it writes"; behaviour §1.6, §2.10): one definition for both sides.

/** The plugin's kubeconfig, written by the agent from its service-account token. */
export const KUBECONFIG_FILE = 'istio-cni-kubeconfig';
/** The agent's log sink; the plugin POSTs its records there. */
export const LOG_SOCKET_FILE = 'log.sock';
/** What log.sock takes of one POST: a body over this many bytes is refused (413) and records past the first
 * MAX_LOG_RECORDS are dropped. A plugin run posts a handful of records (a few KiB); anything far beyond is not a
 * plugin, and any local process can reach the socket's path, so a body is bounded before it is buffered. The
 * plugin sends what would not fit to its rolling file instead. */
export const MAX_LOG_BODY_BYTES = 1024 * 1024;
export const MAX_LOG_RECORDS = 1000;
/** The ambient node agent's add-event socket (§2.6.3); the plugin POSTs ambient pods' add events there. */
export const EVENT_SOCKET_FILE = 'pluginevent.sock';
/** Where the plugin appends its records when no agent listens on the socket. */
export const LOG_FILE = 'istio-cni.log';
