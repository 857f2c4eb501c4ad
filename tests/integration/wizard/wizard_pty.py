#!/usr/bin/python3
"""Drives `upstreamfs proxy create` (no arguments: the wizard) through a pseudo-terminal.

    wizard_pty.py UPFS STATE TRANSCRIPT_DIR SCENARIO [SECRET]

Each scenario types answers the way a person would (some of them ahead of
the prompts), waits for what the program must show, and checks how it
ended. The child gets the pty's slave side as stdin, stdout, stderr and
controlling terminal; this side keeps the slave open too, to read the
terminal's echo flag while the secret is asked for and after the program
has gone. The whole terminal output is written to TRANSCRIPT_DIR/SCENARIO.txt
and, when SECRET is given, must not contain it. Exits 0 when every
expectation held, 1 with the reason otherwise.
"""

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time

TIMEOUT = 15.0


class Fail(Exception):
    pass


class Session:
    def __init__(self, argv):
        self.master, self.slave = os.openpty()
        attrs = termios.tcgetattr(self.slave)
        attrs[3] |= termios.ECHO | termios.ICANON | termios.ISIG
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)

        def child_setup():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        env = dict(os.environ, TERM="dumb")
        env.pop("UPSTREAMFS_LOG", None)
        self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                     start_new_session=True, preexec_fn=child_setup, env=env,
                                     close_fds=True)
        self.out = b""
        self.pos = 0  # expectations look at output after the last match

    def _pump(self, wait):
        r, _, _ = select.select([self.master], [], [], wait)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave handle closed
            return False
        self.out += data
        return bool(data)

    def send(self, text):
        os.write(self.master, text.encode())

    def expect(self, needle, timeout=TIMEOUT):
        """Waits until needle appears after the last match; moves past it."""
        want = needle.encode()
        deadline = time.time() + timeout
        while True:
            i = self.out.find(want, self.pos)
            if i >= 0:
                self.pos = i + len(want)
                return
            if time.time() > deadline:
                raise Fail("timed out waiting for %r; output after the last match:\n%s"
                           % (needle, self.out[self.pos:].decode(errors="replace")))
            self._pump(0.1)

    def echo_on(self):
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def wait_exit(self, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while self.proc.poll() is None:
            if time.time() > deadline:
                self.proc.kill()
                raise Fail("the wizard did not exit; output:\n" + self.text())
            self._pump(0.05)
        while self._pump(0.05):
            pass
        return self.proc.returncode

    def text(self):
        return self.out.decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def expect_exit(s, rc):
    got = s.wait_exit()
    check(got == rc, "exit status %r, expected %d; output:\n%s" % (got, rc, s.text()))


# ---- scenarios ------------------------------------------------------------------------------

def docker_custom_access(s, state, secret):
    """Words and numbers, a bad key typed ahead and asked again, the secret without echo."""
    s.expect("Registry type (1-7 or a name): ")
    s.send("docker\n1bad\n")  # the key's answer typed ahead of its question
    s.expect("Key: ")
    s.expect('  ! key: must start with a letter (got "1bad")')
    s.expect("Key: ")
    s.send("Wiz\n")
    s.expect("  ! key: may contain only lowercase letters, digits, '_', '.' and '-' (got \"Wiz\")")
    s.expect("Key: ")
    s.send("wiz-docker\n")
    s.expect("Source (1-2 or a name) [dockerhub]: ")
    s.send("custom\n")
    s.expect("Registry URL: ")
    s.send("http://127.0.0.1:1/\n")
    s.expect("Authentication (1-2 or a name) [anonymous]: ")
    s.send("2\n")
    s.expect("Access key (user name): ")
    s.send("robot\n")
    s.expect("Secret key (not shown): ")
    check(not s.echo_on(), "the terminal still echoes while the secret is asked for")
    s.send(secret + "\n")
    expect_exit(s, 0)
    check(s.echo_on(), "echo was not turned back on")
    s.expect("created proxy wiz-docker (docker)")
    s.expect("upstreamfs --state %s proxy create wiz-docker --type docker --source custom "
              "--url http://127.0.0.1:1/ --auth access-key --access-key robot "
              "--secret-key-stdin" % state)


def typeahead_all(s, state, secret):
    """Every answer typed before the first question, the secret's too: none may be lost
    (echo is turned off with TCSANOW, which keeps typed-ahead input)."""
    s.send("7\nwiz-files\nhttp://127.0.0.1:1/files\naccess-key\nuser\n%s\n" % secret)
    expect_exit(s, 0)
    s.expect("created proxy wiz-files (generic)")
    s.expect("proxy create wiz-files --type generic --url http://127.0.0.1:1/files "
             "--auth access-key --access-key user --secret-key-stdin")


def helm_reasks(s, state, secret):
    """A number out of range, a bad URL, and an auth the type does not take: each asked again."""
    s.expect("Registry type (1-7 or a name): ")
    s.send("9\n")
    s.expect("  ! choose one of 1-7, or type a name")
    s.send("Helm\n")
    s.expect("Key: ")
    s.send("wiz-helm\n")
    s.expect("Chart repository URL: ")
    s.send("ftp://127.0.0.1/charts\n")
    s.expect("  ! url: scheme must be http or https")
    s.expect("Chart repository URL: ")
    s.send("http://127.0.0.1:1/charts\n")
    s.expect("Authentication (1-2 or a name) [anonymous]: ")
    s.send("aws-chain\n")
    s.expect("  ! auth: aws-chain is for ecr proxies only")
    s.expect("Authentication (1-2 or a name) [anonymous]: ")
    s.send("\n")  # the default
    expect_exit(s, 0)
    s.expect("created proxy wiz-helm (helm)")
    s.expect("proxy create wiz-helm --type helm --url http://127.0.0.1:1/charts\r\n")


def ecr_private(s, state, secret):
    """Private ECR with anonymous auth is refused at the auth question; aws-chain is offered."""
    s.expect("Registry type (1-7 or a name): ")
    s.send("ecr\nwiz-ecr\n")
    s.expect("ECR URL: ")
    s.send("https://123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app\n")
    s.expect("  3) aws-chain")
    s.expect("Authentication (1-3 or a name) [anonymous]: ")
    s.send("anonymous\n")
    s.expect("  ! auth: a private ECR registry needs credentials")
    s.expect("Authentication (1-3 or a name) [anonymous]: ")
    s.send("3\n")
    expect_exit(s, 0)
    s.expect("created proxy wiz-ecr (ecr)")
    s.expect("proxy create wiz-ecr --type ecr --url "
             "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app --auth aws-chain\r\n")


def duplicate_then_eof(s, state, secret):
    """A taken key is refused with configdb's message; end of input cancels (exit 2)."""
    s.expect("Registry type (1-7 or a name): ")
    s.send("1\nwiz-docker\n")
    s.expect('  ! key: a proxy named "wiz-docker" already exists')
    s.expect("Key: ")
    s.send("\x04")  # Ctrl-D on an empty line: end of input
    expect_exit(s, 2)
    s.expect("cancelled: input ended before the last answer; nothing was created")


def interrupt_at_secret(s, state, secret):
    """Ctrl-C while the secret is asked for ends the wizard with echo back on, nothing created."""
    s.expect("Registry type (1-7 or a name): ")
    s.send("generic\nwiz-int\nhttp://127.0.0.1:1/\naccess-key\nu\n")
    s.expect("Secret key (not shown): ")
    check(not s.echo_on(), "the terminal still echoes while the secret is asked for")
    s.send("\x03")
    got = s.wait_exit()
    check(got == -signal.SIGINT, "exit %r after Ctrl-C, expected death by SIGINT" % got)
    check(s.echo_on(), "echo stayed off after Ctrl-C at the secret question")


SCENARIOS = {f.__name__: f for f in (docker_custom_access, typeahead_all, helm_reasks,
                                        ecr_private, duplicate_then_eof, interrupt_at_secret)}


def main():
    upfs, state, tdir, name = sys.argv[1:5]
    secret = sys.argv[5] if len(sys.argv) > 5 else None
    s = Session([upfs, "--state", state, "proxy", "create"])
    try:
        SCENARIOS[name](s, state, secret)
        if secret and name != "typeahead_all":
            # typed ahead, a secret is echoed before the program can turn echo off: not checked
            check(secret.encode() not in s.out, "the secret appeared in the terminal output")
    except Fail as e:
        print("%s: %s" % (name, e), file=sys.stderr)
        return 1
    finally:
        with open(os.path.join(tdir, name + ".txt"), "wb") as f:
            f.write(s.out)
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
