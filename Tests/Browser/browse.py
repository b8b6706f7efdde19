#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol (through --remote-debugging-pipe, so it needs nothing
beyond Python's standard library) for the explorer's browser tests.

    browse.py URL STEP...

Each STEP runs in order in the one page that loaded URL (no reloads in between):
    wait:EXPR        wait until the JavaScript expression EXPR is truthy (fails after --timeout seconds)
    print:EXPR       print the JSON value of EXPR on one line, then flush (a test reads it as it goes)
    screenshot:PATH  write a PNG of the page
    errors           fail if the page threw an uncaught exception or logged a console error so far

Exits 0 when every step passed; otherwise 1 with one line on stderr naming the step and what went wrong
(including the page's own errors, so a test failure shows the script error that caused it).
"""
import base64, json, os, shutil, subprocess, sys, tempfile, time

TIMEOUT = float(os.environ.get("BROWSE_TIMEOUT", "20"))


class Browser:
    def __init__(self):
        binary = next((p for p in ("/usr/lib/chromium/chromium",) if os.path.exists(p)), None) or shutil.which("chromium")
        if not binary:
            sys.exit("browse.py: chromium is not installed (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="amars-chromium-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4; the ends are first moved above 4 so
        # that placing one cannot overwrite the other.
        import fcntl
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        to_chrome_r, from_chrome_w = child_r, child_w
        def wire():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--user-data-dir=" + self.profile,
             "--window-size=1280,1600", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.environ.get("BROWSE_LOG", os.devnull), "w"),
            pass_fds=(3, 4, to_chrome_r, from_chrome_w), preexec_fn=wire)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.out = to_chrome_w
        self.inp = from_chrome_r
        self.buffer = b""
        self.next_id = 0
        self.session = None
        self.errors = []

    def close(self):
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            import select
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self.inp], [], [], left)
            if ready:
                chunk = os.read(self.inp, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium exited")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def _note(self, message):
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "exception")
            self.errors.append("uncaught: " + text.splitlines()[0])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.errors.append("console.error: " + args)
        elif (method == "Log.entryAdded" and params["entry"].get("level") == "error"
              and params["entry"].get("source") != "network"):  # an API's 404 is an answer, not a page error
            entry = params["entry"]
            self.errors.append("log: " + entry.get("text", "") + " " + entry.get("url", ""))

    def call(self, method, params=None, session=True, timeout=TIMEOUT):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(method + ": " + answer["error"].get("message", "error"))
                return answer.get("result", {})
            self._note(answer)

    def pump(self, seconds):
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._note(self._read_message(deadline))
        except TimeoutError:
            pass

    def open(self, url):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                             session=False)
        self.session = attached["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(domain)
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise RuntimeError((d.get("exception", {}).get("description") or d.get("text", "")).splitlines()[0])
        return result["result"].get("value")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    url, steps = sys.argv[1], sys.argv[2:]
    browser = Browser()
    try:
        browser.call("Browser.getVersion", session=False)
        browser.open(url)
        for step in steps:
            kind, _, arg = step.partition(":")
            if kind == "wait":
                deadline = time.monotonic() + TIMEOUT
                while True:
                    try:
                        if browser.evaluate(arg):
                            break
                    except RuntimeError:
                        pass  # the page may still be loading
                    if time.monotonic() > deadline:
                        detail = "; page errors: " + " | ".join(browser.errors) if browser.errors else ""
                        raise RuntimeError("timed out after %.0f s waiting for %s%s" % (TIMEOUT, arg, detail))
                    browser.pump(0.1)
            elif kind == "print":
                print(json.dumps(browser.evaluate(arg)), flush=True)
            elif kind == "screenshot":
                shot = browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
                with open(arg, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
            elif kind == "errors":
                browser.pump(0.2)
                if browser.errors:
                    raise RuntimeError("the page reported errors: " + " | ".join(browser.errors))
            else:
                raise RuntimeError("unknown step " + step)
    except Exception as e:  # one line for the test's failure message
        print("browse.py: %s: %s" % (url, e), file=sys.stderr)
        sys.exit(1)
    finally:
        browser.close()


if __name__ == "__main__":
    main()
