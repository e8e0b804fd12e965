#!/usr/bin/python3
"""Keystroke -> echo round trip over vmmod's serial console websocket.

usage: console.py BASE TOKEN VM KEYS
Sends KEYS single characters ('0' + byte) to the guest's shell, one at a
time, and times each until the guest's echo of it comes back ('1' + bytes);
prints "p50_ms p99_ms max_ms n" on stdout."""
import http.client
import json
import sys
import time
import urllib.parse

import websocket  # python3-websocket

base, token, vm, keys = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host = urllib.parse.urlsplit(base).netloc

c = http.client.HTTPConnection(host, timeout=20)
c.request("POST", "/api/vms/%s/console" % urllib.parse.quote(vm),
          body=json.dumps({"type": "serial"}),
          headers={"Authorization": "Bearer " + token,
                   "Content-Type": "application/json"})
r = c.getresponse()
t = json.loads(r.read())
w = websocket.create_connection(
    "ws://%s/api/vms/%s/console/serial?ticket=%s" % (host, vm, t["ticket"]),
    origin=base, timeout=10)
w.sock.setsockopt(6, 1, 1)  # TCP_NODELAY: time the console, not Nagle


def drain(secs):
    w.settimeout(secs)
    try:
        while True:
            w.recv_data()
    except websocket.WebSocketTimeoutException:
        pass


def roundtrip(ch):
    t0 = time.perf_counter()
    w.send_binary(b"0" + ch)
    w.settimeout(5)
    while True:
        op, data = w.recv_data()
        if data[:1] == b"1" and ch in data[1:]:
            return (time.perf_counter() - t0) * 1000


w.send_binary(b"0\x15\n")  # a fresh prompt
drain(1.0)
lat = []
alphabet = b"abcdefghijklmnopqrstuvwxyz"
for i in range(keys):
    lat.append(roundtrip(alphabet[i % 26:i % 26 + 1]))
    if i % 40 == 39:  # keep the shell's line short
        w.send_binary(b"0\x15")
        drain(0.2)
w.send_binary(b"0\x15")
w.close()
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print("%.2f %.2f %.2f %d" % (p(0.50), p(0.99), lat[-1], len(lat)))
