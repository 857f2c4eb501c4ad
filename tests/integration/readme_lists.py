#!/usr/bin/python3
"""readme_lists.py BINARY README -- the README names every type and command the binary's tables have.

The tables are read from the binary's own help: `--help` lists the commands and their subcommands
(src/cli/cli.c, from each command's table), `proxy create --help` and `registry create --help`
the types (from config's type table). The README cannot be generated, so this checks it: every
type appears as "--type TYPE", every command as "upstreamfs COMMAND", and every subcommand in a
"upstreamfs COMMAND ..." phrase (such as `upstreamfs registry list|show|import`). Prints each
one missing and exits 1, else prints a summary and exits 0.
"""
import re
import subprocess
import sys


def run(binary, *args):
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout


def main():
    binary, readme_path = sys.argv[1], sys.argv[2]
    with open(readme_path, encoding="utf-8") as f:
        readme = " ".join(f.read().split())  # phrases may wrap across lines
    missing = []
    types = set()
    for cmd in ("proxy", "registry"):
        # "--type docker|ecr|..." (proxy) or "--type TYPE       docker, helm, ..." (registry)
        m = re.search(r"--type (?:TYPE +)?([a-z]+(?:(?:\||, )[a-z]+)+)", run(binary, cmd, "create", "--help"))
        if not m:
            missing.append("no --type line in `%s create --help`" % cmd)
            continue
        types.update(re.split(r"\||, ", m.group(1)))
    for t in sorted(types):
        if not re.search(r"--type +%s\b" % re.escape(t), readme):
            missing.append("type %s (no `--type %s`)" % (t, t))
    top = run(binary, "--help")
    section = top.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    commands = 0
    for line in section.splitlines():
        m = re.match(r"  ([a-z-]+) +(?:([a-z, -]+): )?", line)
        if not m:
            continue
        commands += 1
        cmd, subs = m.group(1), [s.strip() for s in (m.group(2) or "").split(",") if s.strip()]
        if not re.search(r"upstreamfs %s\b" % re.escape(cmd), readme):
            missing.append("command %s (no `upstreamfs %s`)" % (cmd, cmd))
        for s in subs:
            phrase = r"upstreamfs %s (?:[^`]*?[ |])?%s(?=[ |`\]]|$)" % (re.escape(cmd), re.escape(s))
            if not re.search(phrase, readme):
                missing.append("%s %s (no `upstreamfs %s ... %s`)" % (cmd, s, cmd, s))
    if commands == 0:
        missing.append("no commands in `--help`")
    for m in missing:
        print("README.md does not name " + m)
    if missing:
        return 1
    print("README.md names all %d types and %d commands with their subcommands" % (len(types), commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
