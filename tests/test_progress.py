"What the console shows while a stage works: a stage's progress bar reaches the console its log redirect hid, in place on a terminal, as rate-limited lines elsewhere."
import fcntl, os, pty, re, select, struct, subprocess, sys, termios, time
from pathlib import Path

import pytest

# a runner-like process: a stage's engine output and its bar inside `output_to`, `sys.argv[2]` seconds between lines
STAGE = """import os, sys, time
from reasonforge.core import progress_bar
from reasonforge.run_folder import output_to
with output_to(sys.argv[1]):
    os.write(2, b'engine output\\n')
    with progress_bar(20, 'greedy answers', every=float(sys.argv[2])) as bar:
        for _ in range(20): time.sleep(0.05); bar.update(1)
"""
# a plain process (`reasonforge predict`): its bar on its own stderr
PLAIN = """import sys, time
from reasonforge.core import progress_bar
with progress_bar(20, 'greedy answers', every=float(sys.argv[2])) as bar:
    for _ in range(20): time.sleep(0.05); bar.update(1)
"""


def read_all(fd:int, process:subprocess.Popen)->bytes:
    "Everything a pty's reader gets until the process on its other end exits."
    out = b""
    while True:
        chunk = b""
        if select.select([fd], [], [], 0.1)[0]:
            try: chunk = os.read(fd, 65536)
            except OSError: pass  # every writer closed: the process ended
        if chunk: out += chunk
        elif process.poll() is not None: return out


@pytest.mark.parametrize("rows, columns", [(24, 80), (0, 0)])  # a pseudo-terminal may not say its size (`script`)
@pytest.mark.parametrize("process_kind", ["stage", "plain"])
def test_bar_draws_in_place_on_a_terminal(tmp_path, rows, columns, process_kind):
    reader, writer = pty.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    code = STAGE if process_kind == "stage" else PLAIN
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path/"stage.log"), "30"], stderr=writer)
    os.close(writer)
    try: screen = read_all(reader, process).decode("utf-8", "replace")
    finally: os.close(reader)
    assert process.wait(timeout=60) == 0
    if process_kind == "stage":  # the log gets the engine's output, no bar
        assert (tmp_path/"stage.log").read_text() == "engine output\n"
    assert screen.replace("\r\n", "\n").count("\r") >= 3 and "20/20" in screen, screen  # tqdm's bar, redrawn in place despite every=30
    assert "INFO reasonforge.progress" not in screen


def test_stage_bar_writes_rate_limited_lines_on_a_pipe(tmp_path):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", STAGE, str(tmp_path/"stage.log"), "0.3"], capture_output=True,
                          text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert (tmp_path/"stage.log").read_text() == "engine output\n"
    lines = done.stderr.splitlines()
    states = [re.fullmatch(r"\d\d:\d\d:\d\d INFO reasonforge\.progress: greedy answers: +\d+% (\d+)/20 \[.*\]", line)
              for line in lines]
    assert all(states) and "\r" not in done.stderr, lines
    counts = [int(state[1]) for state in states]
    assert counts[0] == 0 and counts[-1] == 20 and counts == sorted(set(counts)), counts
    assert len(lines) <= elapsed / 0.3 + 3 and len(lines) < 21, (elapsed, lines)  # not one line per update
