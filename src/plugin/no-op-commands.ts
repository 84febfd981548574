// DEL, STATUS and GC as upstream's plugin answers them: success, doing nothing. Its own module so the executable
// answers them without loading the ADD machinery (bin/istio-cni.ts), and the handlers tests run the same functions.
import type { CniHandlers } from '../cni/dispatch.ts';

export const NO_OP_COMMANDS: Pick<CniHandlers, 'del' | 'status' | 'gc'> = {
  // No cleanup on DEL: the netns is destroyed with its rules. Idempotent; it succeeds when the netns is gone.
  del: () => Promise.resolve(),
  // Upstream's STATUS and GC: nothing the plugin keeps could be unready or leaked.
  status: () => Promise.resolve(),
  gc: () => Promise.resolve(),
};
