// The files of CNI_AGENT_RUN_DIR, a contract between the agent that writes or serves them and the plugin that reads
// or writes them (contract.md "Files it writes"; behaviour §1.6, §2.10): one definition for both sides.

/** The plugin's kubeconfig, written by the agent from its service-account token. */
export const KUBECONFIG_FILE = 'istio-cni-kubeconfig';
/** The agent's log sink; the plugin POSTs its records there. */
export const LOG_SOCKET_FILE = 'log.sock';
/** The ambient node agent's add-event socket (§2.6.3); the plugin POSTs ambient pods' add events there. */
export const EVENT_SOCKET_FILE = 'pluginevent.sock';
/** Where the plugin appends its records when no agent listens on the socket. */
export const LOG_FILE = 'istio-cni.log';
