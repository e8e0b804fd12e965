"""Helpers shared by the console websocket tests (50-console.py,
52-console-tls.py, 98-faults-console.py): the ok/FAIL report lines and the
serial console protocol of vmmod's console websocket (input frames are
'0' + bytes, output frames '1' + bytes)."""
import time

import websocket  # python3-websocket

fails = 0


def ok(msg):
    print("ok   " + msg, flush=True)


def bad(msg):
    global fails
    fails += 1
    print("FAIL " + msg, flush=True)


def check(what, cond, detail=""):
    (ok if cond else bad)(what + ("" if cond or not detail else ": " + detail))


def send_input(w, text):
    w.send_binary(b"0" + text.encode())


def read_until(w, needle, timeout=20):
    """Output frames until needle shows up: (found, the last 64 KiB seen).
    Only the new bytes (and what may hold a split needle) are searched, so
    a flooding guest costs no quadratic scan."""
    seen = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        w.settimeout(max(0.1, end - time.monotonic()))
        try:
            op, data = w.recv_data()
        except websocket.WebSocketTimeoutException:
            break
        if op == websocket.ABNF.OPCODE_BINARY and data[:1] == b"1":
            tail = seen[-len(needle):] + data[1:]
            seen = (seen + data[1:])[-65536:]
            if needle.encode() in tail:
                return True, seen
    return False, seen


def shell_ready(w, total=90):
    """Two prompts, each answering our newline: the shell's line editor
    reads (input sent while the guest's shell still starts can be lost;
    slow under TCG and sanitizers)."""
    end = time.monotonic() + total
    answered = 0
    while answered < 2 and time.monotonic() < end:
        send_input(w, "\n")
        found, _ = read_until(w, "# ", 5)
        answered = answered + 1 if found else 0
    return answered == 2
