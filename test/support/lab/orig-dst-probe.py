#!/usr/bin/python3
# Redirect probe for the e2e lab. Run inside a network namespace (nsenter --net=...).
#   serve PORT...        listen on 0.0.0.0:PORT for each PORT; every connection is answered with one line
#                        "<listening port> <SO_ORIGINAL_DST ip>:<port>" and closed. Prints "ready" once listening.
#   connect HOST PORT    connect, print the line the server sent (exit 1 on failure). Timeout 3 s.
import socket
import struct
import sys
import threading

SO_ORIGINAL_DST = 80


def serve(ports):
    listeners = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        listeners.append((port, s))

    def loop(port, s):
        while True:
            conn, _ = s.accept()
            try:
                raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
                dport = struct.unpack_from("!H", raw, 2)[0]
                dip = socket.inet_ntoa(raw[4:8])
                conn.sendall(f"{port} {dip}:{dport}\n".encode())
            except OSError:
                # no conntrack NAT entry (nothing redirected): the original destination is the local address
                dip, dport = conn.getsockname()[:2]
                conn.sendall(f"{port} {dip}:{dport}\n".encode())
            finally:
                conn.close()

    for port, s in listeners:
        threading.Thread(target=loop, args=(port, s), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


def connect(host, port):
    with socket.create_connection((host, port), timeout=3) as s:
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    print(data.decode().strip(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve([int(p) for p in sys.argv[2:]])
    else:
        try:
            connect(sys.argv[2], int(sys.argv[3]))
        except OSError as error:
            print(f"connect failed: {error}", file=sys.stderr)
            sys.exit(1)
