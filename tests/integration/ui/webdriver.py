"""A small W3C WebDriver client (python standard library only) for Debian's chromium-driver.

    from webdriver import Browser
    with Browser(profile_dir) as b:
        b.get("http://127.0.0.1:5000/")
        b.click("label[for='type-docker']")
        b.wait_text("#err-key", "must start with a letter")
        b.screenshot("page.png")

It starts /usr/bin/chromedriver on a free loopback port, opens one headless
/usr/bin/chromium session with a fresh profile and the flags that keep it
from talking to anything but the pages it is sent to, and stops both on
exit. Every wait has a deadline; a failed one raises WebDriverError naming
what was awaited, what was seen, and the page's console errors.
"""

import base64
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--window-size=1280,1000",
    "--lang=en-US",
]


class WebDriverError(Exception):
    pass


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Browser:
    def __init__(self, profile_dir, log_path=None, chromedriver="/usr/bin/chromedriver",
                 chromium="/usr/bin/chromium", timeout=10.0):
        self.timeout = timeout
        self.session = None
        self.proc = None
        os.makedirs(profile_dir, exist_ok=True)
        log = open(log_path or os.devnull, "ab")
        for _ in range(5):
            self.port = _free_port()
            self.proc = subprocess.Popen([chromedriver, "--port=%d" % self.port],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if self._wait_ready():
                break
            self._stop_driver()
        else:
            raise WebDriverError("chromedriver did not start")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": CHROMIUM_ARGS + ["--user-data-dir=" + profile_dir],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        value = self._call("POST", "/session", caps, timeout=60)
        self.session = value["sessionId"]
        self._call("POST", self._s("/timeouts"), {"pageLoad": 30000, "script": 10000})

    # ---- plumbing ----------------------------------------------------------------------------
    def _wait_ready(self):
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self._call("GET", "/status", timeout=2).get("ready"):
                    return True
            except (OSError, WebDriverError):
                pass
            time.sleep(0.1)
        return False

    def _s(self, path):
        return "/session/%s%s" % (self.session, path)

    def _call(self, method, path, body=None, timeout=30):
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=timeout) as res:
                payload = json.loads(res.read().decode() or "{}")
        except urllib.error.HTTPError as e:
            try:
                v = json.loads(e.read().decode()).get("value", {})
                msg = "%s: %s" % (v.get("error"), (v.get("message") or "").splitlines()[0])
            except Exception:
                msg = str(e)
            raise WebDriverError("%s %s: %s" % (method, path, msg)) from None
        return payload.get("value")

    def _stop_driver(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def quit(self):
        if self.session:
            try:
                self._call("DELETE", self._s(""), timeout=15)
            except (OSError, WebDriverError):
                pass
            self.session = None
        self._stop_driver()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()

    # ---- pages -------------------------------------------------------------------------------
    def get(self, url):
        self._call("POST", self._s("/url"), {"url": url}, timeout=60)

    def url(self):
        return self._call("GET", self._s("/url"))

    def execute(self, script, *args):
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def screenshot(self, path):
        png = base64.b64decode(self._call("GET", self._s("/screenshot"), timeout=60))
        with open(path, "wb") as f:
            f.write(png)

    def console_errors(self):
        try:
            logs = self._call("POST", self._s("/se/log"), {"type": "browser"}) or []
        except WebDriverError:
            return []
        return [e.get("message", "") for e in logs if e.get("level") in ("SEVERE", "ERROR")]

    # ---- elements ----------------------------------------------------------------------------
    def find(self, css):
        v = self._call("POST", self._s("/element"), {"using": "css selector", "value": css})
        return v[ELEMENT]

    def find_all(self, css):
        v = self._call("POST", self._s("/elements"), {"using": "css selector", "value": css})
        return [e[ELEMENT] for e in v]

    def _el(self, el):
        return self.find(el) if isinstance(el, str) else el

    def click(self, el):
        self._call("POST", self._s("/element/%s/click" % self._el(el)))

    def type(self, el, text):
        self._call("POST", self._s("/element/%s/value" % self._el(el)), {"text": text})

    def clear(self, el):
        self._call("POST", self._s("/element/%s/clear" % self._el(el)))

    def text(self, el):
        return self._call("GET", self._s("/element/%s/text" % self._el(el)))

    def prop(self, el, name):
        return self._call("GET", self._s("/element/%s/property/%s" % (self._el(el), name)))

    def displayed(self, el):
        return self._call("GET", self._s("/element/%s/displayed" % self._el(el)))

    def select(self, css, value):
        """Chooses the option with this value in a <select> and fires its change event."""
        self.execute("var s = document.querySelector(arguments[0]); s.value = arguments[1];"
                     "s.dispatchEvent(new Event('change', {bubbles: true}));", css, value)

    # ---- waiting -----------------------------------------------------------------------------
    def wait(self, what, fn, timeout=None):
        deadline = time.time() + (timeout or self.timeout)
        last = None
        while True:
            try:
                last = fn()
                if last:
                    return last
            except WebDriverError as e:
                last = e
            if time.time() > deadline:
                raise WebDriverError("timed out waiting for %s (last: %r; console: %r)"
                                     % (what, last, self.console_errors()))
            time.sleep(0.1)

    def wait_visible(self, css, timeout=None):
        return self.wait(css + " visible", lambda: self.displayed(css) and self.find(css),
                         timeout)

    def wait_hidden(self, css, timeout=None):
        return self.wait(css + " hidden", lambda: not self.displayed(css), timeout)

    def wait_text(self, css, needle, timeout=None):
        """Waits until the visible text of css contains needle; returns the whole text."""
        seen = {}

        def probe():
            seen["t"] = self.text(css) if self.displayed(css) else ""
            return needle in seen["t"] and seen["t"]
        return self.wait("%r in %s" % (needle, css), probe, timeout)
