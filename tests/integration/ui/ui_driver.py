#!/usr/bin/python3
"""Drives the shim's web page in headless Chromium (webdriver.py) for ui_browser_test.sh.

    ui_driver.py --base http://127.0.0.1:PORT --work DIR [--shots DIR]
                 [--token-file STATEDIR/admin-token | --user U --password P] SCENARIO

Scenarios:
  full   the create-proxy form (visibility of fields by type and source, the key rule's
         messages as you type equal to the server's, a bad key refused by the POST, then a
         docker proxy "mirror" with a custom URL and anonymous auth); a registry "all" of the
         docker proxies hub and mirror in a chosen order (hub moved above mirror); the order
         of the generic registry "pair" (gen, gen2) reversed on its order page; the overview;
         the cache page (pin and evict of gen/hello.txt, an error for a path that does not
         exist). Expects the shell test's fixtures: proxies hub (docker), gen and gen2
         (generic, gen/hello.txt cached) and the registry pair.
  hostile  pages a generic proxy serves (gen/evil.html, .svg, .xml (XHTML)) whose scripts call the
         API same-origin with the tab's token, opened in the tab that holds it: no script
         runs (the title is not "ran ...") and the document's origin is opaque ("null")
  auth   with the shim's --htpasswd on and --admin U: the page and its API calls work with
         the browser's Basic credentials (a generic proxy "authed" is created through the form)
  health the overview with a generic proxy "down" whose remote answers 500 and "gen" whose
         remote answers 200 (ui_health_test.sh): the badge of down says failing (or
         backing-off) with "cause http 500" and "last success never", gen's says online
         (screenshot ui-health.png); then the driver writes --ready-file, the shell test
         fixes the remote and writes --go-file, and without a reload (the page polls) down's
         badge turns online

With --token-file the browser first opens "/" without the token (the page shows the API's
401, which says how to get the token), then the token URL /ui/#token=TOKEN once: the token
must leave the address bar for the tab's sessionStorage, and every later page of the tab
uses it. The test's own API calls send it as a Bearer header.

The CLI checks of the results are the shell test's. With --shots, full-page PNG
screenshots are written there (docs/ keeps them). Exits 0 on success, 1 with
the reason.
"""

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webdriver import Browser, WebDriverError  # noqa: E402


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Api:
    """Same-origin API calls from the test itself, for the server's verdicts."""

    def __init__(self, base, user, password, token=None):
        self.base = base
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token
        elif user:
            tok = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            self.headers["Authorization"] = "Basic " + tok
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=self.headers)
        try:
            with self.opener.open(req, timeout=30) as res:
                return res.status, json.loads(res.read().decode() or "null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode() or "null")

    def key_message(self, key):
        """The server's message for a key, as POST /api/v1/proxies would give it."""
        status, j = self.call("POST", "/api/v1/validate/proxy", {"key": key, "type": "docker"})
        check(status in (400, 409), "validate %r: status %d %r" % (key, status, j))
        check(j["error"]["field"] == "key", "validate %r: field %r" % (key, j["error"]["field"]))
        return j["error"]["message"]


class Page:
    def __init__(self, b, base, shots):
        self.b, self.base, self.shots = b, base, shots

    def open(self, path):
        self.b.get(self.base + path)
        self.b.wait("the page's script", lambda: self.b.execute(
            "return document.readyState === 'complete'"))

    def shot(self, name):
        if not self.shots:
            return
        h = self.b.execute("return Math.ceil(document.documentElement.scrollHeight)")
        self.b.execute("window.scrollTo(0, 0)")
        rect = self.b._call("GET", self.b._s("/window/rect"))
        self.b._call("POST", self.b._s("/window/rect"),
                     {"width": 1280, "height": min(max(int(h) + 140, 700), 4000)})
        try:
            self.b.screenshot(os.path.join(self.shots, name))
        finally:
            self.b._call("POST", self.b._s("/window/rect"),
                         {"width": rect["width"], "height": rect["height"]})

    def text_of(self, css):
        """textContent: the visible message without the CSS warning sign before it."""
        return self.b.prop(css, "textContent")

    def visible(self, css):
        return self.b.displayed(css)

    def choose(self, group, value):
        self.b.click('label[for="%s-%s"]' % (group, value))

    def radio(self, name, value):
        self.b.click('label:has(> input[name="%s"][value="%s"])' % (name, value))

    def set_input(self, css, text):
        self.b.clear(css)
        if text:
            self.b.type(css, text)
        # clear() fires no input event: make sure the page sees the new value
        self.b.execute("document.querySelector(arguments[0]).dispatchEvent("
                       "new Event('input', {bubbles: true}))", css)

    def wait_error(self, css, want):
        def probe():
            return self.visible(css) and self.text_of(css) == want
        try:
            self.b.wait("%s to say %r" % (css, want), probe)
        except WebDriverError:
            raise Fail("%s says %r (visible: %r), expected %r"
                       % (css, self.text_of(css), self.visible(css), want)) from None

    def order(self):
        return self.b.execute("return Array.from(document.querySelectorAll("
                              "'#upstream-list li[data-key]')).map(function (li) {"
                              " return li.getAttribute('data-key'); })")


# ---- scenarios --------------------------------------------------------------------------------

def create_proxy_form(p, api):
    b = p.b
    p.open("/ui/proxies/new")
    check(not p.visible("#step-key"), "the key step shows before a type is chosen")
    # only the fields that apply: helm has a URL and no source, ecr offers the AWS chain
    p.choose("type", "helm")
    b.wait_visible("#step-key")
    check(not p.visible("#source-row"), "helm shows the docker source choice")
    check(p.visible("#url-row"), "helm hides its URL")
    check(p.text_of("#url-label") == "Chart repository URL", "helm's URL label")
    check(not p.visible("#auth-aws-chain"), "helm offers aws-chain")
    p.choose("type", "ecr")
    check(p.visible("#auth-aws-chain"), "ecr does not offer aws-chain")
    check("dkr.ecr" in p.text_of("#url-hint"), "ecr's URL hint does not show the URL forms")
    p.choose("type", "docker")
    check(p.visible("#source-row"), "docker hides the source choice")
    check(not p.visible("#url-row"), "docker with Docker Hub shows a URL field")
    check(not p.visible("#cred-rows"), "anonymous auth shows the credential fields")

    # the key rule as you type: the same text as the server's message for the same key
    for key in ["1bad", "Bad", "api", "b" * 65, "with space", "gen", "hub"]:
        p.set_input("#key", key)
        want = api.key_message(key)
        p.wait_error("#err-key", want)
    p.set_input("#key", "1bad")
    p.wait_error("#err-key", api.key_message("1bad"))
    p.shot("ui-key-error.png")

    # the rest of the form: a custom registry URL, anonymous
    p.radio("source", "custom")
    b.wait_visible("#url-row")
    check(p.text_of("#url-label") == "Registry URL", "docker's URL label")
    p.set_input("#url", "http://127.0.0.1:1/")
    p.radio("auth", "access-key")
    b.wait_visible("#cred-rows")
    p.radio("auth", "anonymous")
    b.wait_hidden("#cred-rows")

    # a bad key is refused by the POST itself, with the rule's message, and nothing is made
    p.set_input("#key", "1bad")
    want = api.key_message("1bad")
    b.click("#create-proxy")
    p.wait_error("#err-key", want)
    check(not p.visible("#created"), "a proxy was reported created with a bad key")
    status, _ = api.call("GET", "/api/v1/proxies/x1bad")
    check(status == 404, "a proxy appeared after the refused POST")

    p.set_input("#key", "mirror")
    b.wait_hidden("#err-key")
    p.shot("ui-create-proxy.png")
    b.click("#create-proxy")
    b.wait_visible("#created")
    cli = p.text_of("#created-cli")
    check(cli == "upstreamfs proxy create mirror --type docker --source custom "
          "--url http://127.0.0.1:1/", "the equivalent command shown: %r" % cli)
    p.shot("ui-proxy-created.png")


def create_registry(p, api):
    b = p.b
    p.open("/ui/registries/new")
    p.set_input("#name", "1all")
    p.wait_error("#err-name", api.key_message("1all"))
    p.set_input("#name", "all")
    b.wait_hidden("#err-name")
    p.choose("rtype", "docker")
    opts = b.execute("return Array.from(document.querySelectorAll('#add-upstream option'))"
                     ".map(function (o) { return o.value; })")
    check(sorted(opts) == ["hub", "mirror"], "a docker registry offers %r" % opts)
    for key in ("mirror", "hub"):
        b.select("#add-upstream", key)
        b.click("#add-upstream-btn")
    check(p.order() == ["mirror", "hub"], "order after adding: %r" % p.order())
    b.click('button[aria-label="Move hub up"]')
    check(p.order() == ["hub", "mirror"], "order after moving hub up: %r" % p.order())
    p.shot("ui-registry.png")
    b.click("#save-registry")
    b.wait_visible("#saved")
    cli = p.text_of("#saved-cli")
    check(cli == "upstreamfs registry create all --type docker --upstream hub --upstream mirror",
          "the equivalent command shown: %r" % cli)


def reorder_registry(p, api):
    b = p.b
    p.open("/ui/registries/pair/order")
    b.wait("the upstreams of pair", lambda: p.order() == ["gen", "gen2"])
    check(b.prop("#name", "readOnly"), "the name of an existing registry is editable")
    b.click('button[aria-label="Move gen2 up"]')
    check(p.order() == ["gen2", "gen"], "order after moving gen2 up: %r" % p.order())
    b.click("#save-registry")
    b.wait_visible("#saved")
    cli = p.text_of("#saved-cli")
    check(cli == "upstreamfs registry set-upstreams pair gen2 gen",
          "the equivalent command shown: %r" % cli)


def overview(p, api):
    b = p.b
    p.open("/")
    b.wait("the proxy rows", lambda: len(b.find_all("#proxies tr[data-key]")) == 4)
    b.wait("the registry rows", lambda: len(b.find_all("#registries tr[data-name]")) == 2)
    state = p.text_of('#proxies tr[data-key="mirror"] .badge')
    check(state == "online", "state of mirror: %r" % state)
    cached = p.text_of('#proxies tr[data-key="gen"] td.num')
    check("1 files" in cached, "cache use of gen: %r" % cached)
    ups = p.text_of('#registries tr[data-name="all"] ol')
    check(ups == "hubmirror", "upstreams of all as listed: %r" % ups)
    links = b.execute("return Array.from(document.querySelectorAll('ul.browse a'))"
                      ".map(function (a) { return a.getAttribute('href'); })")
    check(sorted(links) == ["all/", "gen/", "gen2/", "hub/", "mirror/", "pair/"], "browse links %r" % links)
    p.shot("ui-overview.png")


def cache_page(p, api):
    b = p.b
    row = 'tr[data-path="gen/hello.txt"]'
    p.open("/ui/cache")
    b.wait_visible("#artifacts " + row)
    check("%" in p.text_of("#cards .card .v"), "no hit rate shown")
    b.click("#artifacts %s button.secondary" % row)  # Pin
    b.wait("gen/hello.txt pinned",
           lambda: p.text_of("#artifacts %s td:nth-child(4)" % row) == "yes")
    _, c = api.call("GET", "/api/v1/cache")
    check([a["pinned"] for a in c["artifacts"] if a["path"] == "gen/hello.txt"] == [True],
          "the API does not report gen/hello.txt pinned: %r" % c["artifacts"])
    p.shot("ui-cache.png")
    # evict asks twice
    ev = "#artifacts %s button.danger" % row
    b.click(ev)
    b.wait("the evict button armed", lambda: p.text_of(ev) == "Confirm evict")
    b.click(ev)
    b.wait("gen/hello.txt evicted", lambda: not b.find_all("#artifacts " + row))
    _, c = api.call("GET", "/api/v1/cache")
    check(not [a for a in c["artifacts"] if a["path"] == "gen/hello.txt"],
          "the API still lists gen/hello.txt after evict")
    # a path that does not exist: the server's error is shown
    p.set_input("#cache-path", "gen/missing.txt")
    b.click('#path-form button[data-action="pin"]')
    b.wait_text("#path-result", "no such path")


def auth_scenario(p, api):
    b = p.b
    p.open("/ui/proxies/new")
    p.choose("type", "generic")
    p.set_input("#key", "1x")
    p.wait_error("#err-key", api.key_message("1x"))
    p.set_input("#key", "authed")
    p.set_input("#url", "http://127.0.0.1:1/authed")
    b.wait_hidden("#err-key")
    b.click("#create-proxy")
    b.wait_visible("#created")
    p.open("/")
    b.wait("the proxy row", lambda: len(b.find_all('#proxies tr[data-key="authed"]')) == 1)


def health_scenario(p, ready_file, go_file):
    b = p.b
    p.open("/")
    down = '#proxies tr[data-key="down"] '

    def failing():
        return (p.text_of(down + ".badge") in ("failing", "backing-off")
                and p.text_of(down + ".cause") == "cause http 500")
    try:
        b.wait("the badge of down to say failing, cause http 500", failing, timeout=20)
    except WebDriverError:
        raise Fail("down shows %r" % p.text_of(down + "td.state")) from None
    check(p.text_of(down + ".last-ok") == "last success never",
          "last success of down: %r" % p.text_of(down + ".last-ok"))
    check(p.text_of('#proxies tr[data-key="gen"] .badge') == "online",
          "state of gen: %r" % p.text_of('#proxies tr[data-key="gen"] .badge'))
    color = b.execute("return getComputedStyle(document.querySelector(arguments[0])).color",
                      down + ".badge")
    check(color == "rgb(179, 38, 30)", "the failing badge's colour: %r (want --bad)" % color)
    print("ok: down shows %r, gen online" % p.text_of(down + "td.state"), file=sys.stderr)
    p.shot("ui-health.png")
    with open(ready_file, "w") as f:
        f.write("failing shown\n")
    b.wait("the shell test to fix the remote", lambda: os.path.exists(go_file), timeout=60)
    try:
        b.wait("the badge of down to turn online", lambda: p.text_of(down + ".badge") == "online",
               timeout=20)
    except WebDriverError:
        raise Fail("down still shows %r after the recovery" % p.text_of(down + "td.state")) from None
    check(not b.find_all(down + ".cause"), "the cause still shows after the recovery")


def open_with_token(p, token):
    """The page without the token shows the API's 401; the token URL once fixes that."""
    b = p.b
    p.open("/")
    b.wait_text("#load-error", "the admin API needs the admin token")
    p.open("/ui/#token=" + token)
    b.wait("the token to leave the address bar", lambda: "#token" not in b.url())
    check(b.execute("return sessionStorage.getItem('upstreamfs-admin-token')") == token,
          "the token is not in the tab's sessionStorage")
    check(b.execute("return document.cookie") == "", "the page set a cookie")
    b.wait("the proxy list", lambda: len(b.find_all('#proxies tr[data-key="gen"]')) == 1)
    check(not b.displayed("#load-error"), "the page still shows a load error with the token")


def hostile_scenario(p, api, token):
    """Content a proxy serves (an .html, an .svg) tries the API from the shim's own origin,
    in the tab that holds the admin token; the shell test checks through the CLI that nothing
    changed. The pages set their title when their script runs: it must not run."""
    b = p.b
    open_with_token(p, token)
    for name in ("evil.html", "evil.svg", "evil.xml"):
        p.open("/")  # the page of the tab that holds the token, then the content in that tab
        b.wait("the proxy list", lambda: len(b.find_all('#proxies tr[data-key="gen"]')) == 1)
        p.open("/gen/" + name)
        b.wait("the page to load", lambda: b.execute("return document.readyState") == "complete")
        time.sleep(1.5)  # a script that did run has had the time for its two requests
        title = b.execute("return document.title")
        check(not title.startswith("ran"), "the script of %s ran: %r" % (name, title))
        check(b.execute("return window.origin") == "null",
              "%s has the shim's origin, not an opaque one: %r" % (name, b.execute("return window.origin")))
        print("ok: %s ran no script (title %r), opaque origin" % (name, title), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--shots")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--token-file")
    ap.add_argument("--ready-file")
    ap.add_argument("--go-file")
    ap.add_argument("scenario", choices=["full", "auth", "hostile", "health"])
    a = ap.parse_args()
    token = None
    if a.token_file:
        with open(a.token_file) as f:
            token = f.read().strip()
    api = Api(a.base, a.user, a.password, token)
    if a.shots:
        os.makedirs(a.shots, exist_ok=True)
    try:
        with Browser(os.path.join(a.work, "profile-" + a.scenario),
                     os.path.join(a.work, "chromedriver-%s.log" % a.scenario)) as b:
            p = Page(b, a.base, a.shots)
            if a.user:
                # Credentials in the address once, for the whole origin ("/"): later pages and
                # every fetch of theirs go without them in the URL, as a person's browser does.
                u = urllib.parse.urlsplit(a.base)
                b.get("%s://%s:%s@%s/" % (u.scheme, urllib.parse.quote(a.user),
                                          urllib.parse.quote(a.password), u.netloc))
            if a.scenario == "hostile":
                hostile_scenario(p, api, token)
                return 0
            if token:
                open_with_token(p, token)
                print("ok: open_with_token", file=sys.stderr)
            def health(p, api):
                health_scenario(p, a.ready_file, a.go_file)
            if a.scenario == "health":
                steps = [health]
            elif a.scenario == "auth":
                steps = [auth_scenario]
            else:
                steps = [create_proxy_form, create_registry, reorder_registry, overview, cache_page]
            for step in steps:
                try:
                    step(p, api)
                except (Fail, WebDriverError) as e:
                    try:
                        b.screenshot(os.path.join(a.work, "failed-%s.png" % step.__name__))
                    except WebDriverError:
                        pass
                    errs = b.console_errors()
                    raise Fail("%s: %s%s" % (step.__name__, e,
                                             "; console: %r" % errs if errs else ""))
                print("ok: %s" % step.__name__, file=sys.stderr)
            # The page's strict policy (no inline script or style) refused nothing it needs.
            refused = [m for m in b.console_errors() if "Content Security Policy" in m]
            check(not refused, "the page's CSP refused some of its own content: %r" % refused)
    except (Fail, WebDriverError) as e:
        print("ui_driver: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
