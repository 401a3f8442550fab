"""README's command for exploring the notebooks, `bash tools/lab.sh`, run as a user runs it (no environment activated):
its server serves `nbs/` with the `reasonforge` kernel; that kernel, started through the server's REST API and driven
over its websocket as JupyterLab drives it, runs the first cells of `nbs/walkthrough.ipynb` (imports, Spider) with
this checkout's library and `.venv`; and `/lab` renders as JupyterLab in a real browser (headless Chromium)."""
import json, os, re, shutil, signal, socket, subprocess, time, urllib.error, urllib.request, uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import websocket  # websocket-client: a dependency of jupyter_server, which jupyterlab (dev_requirements) brings

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = "walkthrough.ipynb"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _without_venv(env):
    "The environment of a shell where no virtual environment is activated: tools/lab.sh must find .venv itself."
    venv = env.pop("VIRTUAL_ENV", None)
    if venv: env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != f"{venv}/bin")
    env.pop("PYTHONHOME", None)
    return env


class Lab:
    "A JupyterLab server started by tools/lab.sh, and what a test needs to talk to it."
    def __init__(self, folder):
        self.folder, self.port, self.token = folder, _free_port(), uuid.uuid4().hex
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder/"server.log"
        env = _without_venv({**os.environ})
        # Jupyter's user folders (config, workspaces, runtime files, notebook trust) and IPython's: the test's own
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            env[name] = str(folder/name.lower())
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                ["bash", "tools/lab.sh", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                 "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, lines=40):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def lab_url(self): return f"{self.base}/lab?token={self.token}"

    def wait_ready(self, timeout=300):
        "Wait until `/lab?token=T` answers 200 (tools/lab.sh installs first if .venv is not up to date)."
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"tools/lab.sh exited with {self.process.returncode} before serving /lab:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.lab_url(), timeout=10) as response:
                    if response.status == 200: return response.read().decode()
            except (urllib.error.URLError, ConnectionError, TimeoutError): pass
            time.sleep(0.5)
        pytest.fail(f"/lab?token=T did not answer 200 within {timeout} s:\n{self.log_tail()}")

    def api(self, method, path, body=None, timeout=60):
        "Call the server's REST API with the token; the decoded JSON answer (None when empty)."
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as e:
            pytest.fail(f"{method} {path}: HTTP {e.code} {e.read().decode(errors='replace')[:500]}\n{self.log_tail(20)}")
        return json.loads(text) if text else None

    def stop(self):
        "Shut the server down through its API (it stops its kernels); signals only if it does not go."
        if self.process.poll() is None:
            try: self.api("POST", "/api/shutdown", timeout=10)
            except (urllib.error.URLError, ConnectionError, TimeoutError): pass
            try: self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
                    try: os.killpg(self.process.pid, sig)
                    except ProcessLookupError: break
                    try: self.process.wait(timeout=wait); break
                    except subprocess.TimeoutExpired: pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.page = server.wait_ready()
        yield server
    finally:
        server.stop()
    assert server.process.returncode is not None, "the JupyterLab server is still running"


def _execute(ws, session, code, timeout=300):
    "Run `code` in the kernel behind websocket `ws` as JupyterLab does; (execute_reply content, output messages)."
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": session,
                   "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    reply, outputs, idle = None, [], False
    deadline = time.monotonic() + timeout
    while reply is None or not idle:
        left = deadline - time.monotonic()
        if left <= 0: pytest.fail(f"no answer from the kernel within {timeout} s to:\n{code[:300]}")
        ws.settimeout(left)
        frame = ws.recv()
        if isinstance(frame, bytes): continue  # messages with binary buffers (widgets): none of ours
        msg = json.loads(frame)
        if msg.get("parent_header", {}).get("msg_id") != msg_id: continue
        kind = msg["header"]["msg_type"]
        if msg["channel"] == "shell" and kind == "execute_reply": reply = msg["content"]
        elif msg["channel"] == "iopub" and kind == "status": idle = idle or msg["content"]["execution_state"] == "idle"
        elif msg["channel"] == "iopub" and kind in ("stream", "display_data", "execute_result", "error"): outputs.append(msg)
    return reply, outputs


def _first_cells(notebook):
    "The walkthrough's code cells up to the one that loads Spider: imports and data, no model."
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code": continue
        cells.append("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
        if "load_spider(" in cells[-1]: return cells
    pytest.fail(f"nbs/{WALKTHROUGH} has no code cell that calls load_spider(: update this test")


def test_the_reasonforge_kernel_runs_the_walkthroughs_first_cells(lab):
    assert "reasonforge" in lab.api("GET", "/api/kernelspecs")["kernelspecs"], "the reasonforge kernel is not registered"
    # the server's root is nbs/: the notebook comes from the server, as JupyterLab opens it
    notebook = lab.api("GET", f"/api/contents/{WALKTHROUGH}?content=1&type=notebook")["content"]
    cells = _first_cells(notebook)
    assert any(re.search(r"^from reasonforge\.", cell, re.M) for cell in cells), cells
    kernel = lab.api("POST", "/api/kernels", {"name": "reasonforge"})
    assert kernel["name"] == "reasonforge", kernel
    session = uuid.uuid4().hex
    ws = websocket.create_connection(f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel['id']}/channels?session_id={session}",
                                     header=[f"Authorization: token {lab.token}"], timeout=60)
    try:
        for cell in cells:
            reply, outputs = _execute(ws, session, cell)
            if reply["status"] != "ok":
                traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(reply.get("traceback", [])))
                pytest.fail(f"nbs/{WALKTHROUGH}: this cell failed in the reasonforge kernel:\n{cell}\n\n{traceback}")
        # the last cell (the question's prompt) ends with a table: its value came back
        assert any(o["header"]["msg_type"] == "execute_result" and "text/html" in o["content"]["data"] for o in outputs), outputs
        reply, outputs = _execute(ws, session, "import json, sys, reasonforge\n"
                                  "from reasonforge.data import find_spider_dir\n"
                                  "print(json.dumps({'prefix': sys.prefix, 'library': reasonforge.__file__,"
                                  " 'spider': str(find_spider_dir()), 'train': len(train.questions)}))")
        assert reply["status"] == "ok", reply
    finally:
        ws.close()
        lab.api("DELETE", f"/api/kernels/{kernel['id']}")
    seen = json.loads("".join(o["content"]["text"] for o in outputs if o["header"]["msg_type"] == "stream"))
    assert Path(seen["prefix"]).resolve() == (ROOT/".venv").resolve(), seen  # the project's environment
    assert Path(seen["library"]).resolve() == (ROOT/"reasonforge"/"__init__.py").resolve(), seen  # this checkout
    if os.environ.get("REASONFORGE_SPIDER_DIR"):
        assert Path(seen["spider"]) == Path(os.environ["REASONFORGE_SPIDER_DIR"]).resolve(), seen
    assert seen["train"] == 7000, seen


def test_jupyterlab_renders_in_headless_chromium(lab, tmp_path):
    assert '"appName": "JupyterLab"' in lab.page  # the page the server sends
    chromium = next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
    if chromium is None:
        pytest.fail("no Chromium: tools/test.sh installs it where apt-get can "
                    "(apt-get install -y --no-install-recommends chromium)")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         f"--user-data-dir={tmp_path/'chromium'}", "--window-size=1280,900", "--virtual-time-budget=60000",
         "--dump-dom", lab.lab_url()],
        capture_output=True, text=True, timeout=300)
    dom = result.stdout
    said = "\n".join(line for line in result.stderr.splitlines() if "dbus" not in line)[-2000:]  # no D-Bus here: noise
    context = f"Chromium exited with {result.returncode}; it said:\n{said}\nserver:\n{lab.log_tail(20)}"
    assert "jp-LabShell" in dom, f"JupyterLab's application did not render.\n{context}"  # its scripts ran
    # the launcher offers the project's kernel, and the file browser shows nbs/
    assert re.search(r'class="jp-LauncherCard" title="ReasonForge"[^>]*data-category="Notebook"', dom), \
        f"the launcher has no ReasonForge notebook card.\n{context}"
    assert f'title="Name: {WALKTHROUGH}' in dom, f"the file browser does not list nbs/{WALKTHROUGH}.\n{context}"
