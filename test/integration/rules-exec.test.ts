// SpawnExec (the real Exec port of the agent and the tests) against the Exec contract.
import { SpawnExec } from '../../src/sys/spawn-exec.ts';
import { execContract } from '../support/exec-contract.ts';

execContract('SpawnExec', () => new SpawnExec());
