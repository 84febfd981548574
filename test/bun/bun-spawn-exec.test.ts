// BunSpawnExec (the compiled plugin's Exec port) against the Exec contract, under bun (`bun test ./test/bun`).
import { BunSpawnExec } from '../../src/sys/bun-spawn-exec.ts';
import { execContract } from '../support/exec-contract.ts';

execContract('BunSpawnExec', () => new BunSpawnExec());
