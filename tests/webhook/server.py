#!/usr/bin/python3
"""Webhook receiver for the drill, on 127.0.0.1 and a free port (printed first).

POST /ok        200 if Content-Type is application/json, User-Agent is
                telecared/..., there is no Expect header and the body is JSON; 400 otherwise
POST /fail      500
POST /hang      reads the request, never answers
POST /slow      200 after 1 s
POST /redirect  302 to /ok (must not be followed)
Every request is logged to stdout as "HIT <run> <path>" (run: ?run= in the URL).
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


LOCK = threading.Lock()


def log(line):
    with LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, extra=()):
        try:
            self.send_response(code)
            for k, v in extra:
                self.send_header(k, v)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"bye")
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client gave up (a cancelled delivery)

    def do_POST(self):
        u = urlsplit(self.path)
        run = parse_qs(u.query).get("run", ["-"])[0]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        log(f"HIT {run} {u.path} {len(body)}")
        if u.path == "/ok":
            good = (self.headers.get("Content-Type") == "application/json"
                    and self.headers.get("User-Agent", "").startswith("telecared/")
                    and self.headers.get("Expect") is None)
            try:
                json.loads(body)
            except ValueError:
                good = False
            self.answer(200 if good else 400)
        elif u.path == "/fail":
            self.answer(500)
        elif u.path == "/hang":
            time.sleep(3600)
        elif u.path == "/slow":
            time.sleep(1)
            self.answer(200)
        elif u.path == "/redirect":
            self.answer(302, [("Location", "/ok")])
        else:
            self.answer(404)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    log(str(srv.server_address[1]))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
