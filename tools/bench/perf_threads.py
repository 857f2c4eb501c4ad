#!/usr/bin/python3
"""tools/bench/perf_threads.py -- where a process's threads spend CPU, from `perf script`.

    perf record -a -g -e cpu-clock -o P.data -- CMD     (or -p PID)
    perf script -i P.data -F comm,pid,tid,ip,sym,dso | perf_threads.py --pid PID [--top N]

perf on virtual machines often has no hardware counters (`perf stat -e instructions` says "not
supported"); cpu-clock sampling still works and includes kernel stacks. For each thread of PID
this prints its share of all samples, then its hottest leaf functions and the hottest functions
of the process's own binary (or libraries) on its stacks ("inclusive"), so a busy download
thread and its syscalls can be told apart from FUSE worker threads.
"""
import argparse
import collections
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    total = 0
    per_tid = collections.Counter()
    leaf = collections.defaultdict(collections.Counter)
    incl = collections.defaultdict(collections.Counter)
    cur = None
    frames = []

    def flush():
        if cur is None:
            return
        pid, tid = cur
        if pid != a.pid:
            return
        per_tid[tid] += 1
        if frames:
            leaf[tid][frames[0]] += 1
        seen = set()
        for f in frames:
            if f in seen or "[kernel" in f:
                continue
            seen.add(f)
            incl[tid][f] += 1

    for line in sys.stdin:
        if not line.strip():
            continue
        if not line.startswith((" ", "\t")):
            flush()
            total += 1
            parts = line.split()
            # "comm pid/tid" ; comm may contain spaces, so take the last field
            pt = parts[-1] if "/" in parts[-1] else next(p for p in parts if "/" in p)
            p, t = pt.split("/")
            cur = (int(p), int(t))
            frames = []
            continue
        f = line.strip().split(None, 1)
        if len(f) == 2:
            frames.append(f[1])
    flush()
    if not total:
        print("no samples")
        return
    print("samples: %d in all; pid %d: %d (%.1f%%)" % (total, a.pid, sum(per_tid.values()),
                                                    100.0 * sum(per_tid.values()) / total))
    for tid, n in per_tid.most_common(6):
        print("\n  tid %d: %d samples (%.1f%% of all)" % (tid, n, 100.0 * n / total))
        print("    leaf:")
        for f, c in leaf[tid].most_common(a.top):
            print("      %5.1f%%  %s" % (100.0 * c / n, f))
        print("    inclusive (user space):")
        for f, c in incl[tid].most_common(a.top):
            print("      %5.1f%%  %s" % (100.0 * c / n, f))


if __name__ == "__main__":
    main()
