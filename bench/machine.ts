import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  readonly totalMemoryBytes: number;
  /** 1, 5 and 15 minute load averages when the run started: others sharing the cores show here. */
  readonly loadAverage: readonly number[];
}

export interface GitInfo {
  readonly branch: string | null;
  readonly commit: string | null;
  readonly dirty: boolean | null;
}

export function describeMachine(): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    totalMemoryBytes: totalmem(),
    loadAverage: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

/** One line: what a reader needs to compare a run with another machine's. */
export function formatMachine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${(m.totalMemoryBytes / 1024 ** 3).toFixed(1)} GiB, Node ${m.node} (${m.platform} ${m.arch}), load average ${m.loadAverage.join(' ')}`;
}

export function describeGit(): GitInfo {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const git = (...args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd, encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const status = git('status', '--porcelain', '--untracked-files=no');
  return { branch: git('rev-parse', '--abbrev-ref', 'HEAD'), commit: git('rev-parse', '--short=12', 'HEAD'), dirty: status === null ? null : status.length > 0 };
}
