import threading
import time

from ltrr.plugin.ops.node.lock import exclusive


def test_second_holder_waits_for_the_first(tmp_path):
    path = tmp_path / "sub" / "x.lock"
    events = []
    first_in = threading.Event()

    def first():
        with exclusive(path):
            events.append("first in")
            first_in.set()
            time.sleep(0.3)
            events.append("first out")

    def second():
        first_in.wait()
        with exclusive(path):
            events.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert events == ["first in", "first out", "second in"]
