import subprocess
import sys

import pytest


@pytest.fixture
def impostor():
    """Start processes whose command line names a node home, as a real node's does.

    Each is returned only once it has exec'd: until then its command line is still pytest's.
    """
    started = []

    def start(home, ignore_sigterm=False):
        code = "import signal, time; "
        if ignore_sigterm:
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        code += "print('ready', flush=True); time.sleep(120)"
        proc = subprocess.Popen(
            [sys.executable, "-c", code, f"-Dopensearch.path.home={home}"], stdout=subprocess.PIPE
        )
        started.append(proc)
        assert proc.stdout.readline() == b"ready\n"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()
        proc.stdout.close()
