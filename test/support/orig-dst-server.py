#!/usr/bin/env python3
# Test helper (engineer B, rule engine; reused by plugin/repair/e2e tests). No dependencies beyond python3.
#
#   orig-dst-server.py serve PORT[,PORT…] [--udp PORT[,PORT…]] [--transparent]
#       Listens on 0.0.0.0 and :: (TCP; UDP for --udp). For every TCP connection it writes one line
#       "<listen-port> <orig-ip> <orig-port>\n" and closes: the original destination comes from SO_ORIGINAL_DST
#       (IPv4: getsockopt(SOL_IP, 80, 16); IPv6: getsockopt(IPPROTO_IPV6, 80, 28)), or from the socket's local
#       address when no conntrack NAT happened (TPROXY, or plain traffic). For every UDP datagram it replies
#       "<listen-port> udp\n". --transparent sets IP_TRANSPARENT (needed to accept TPROXY'd connections).
#       Prints "ready\n" on stdout once all sockets listen; runs until killed.
#   orig-dst-server.py client HOST PORT [--udp] [--bind SOURCE_IP] [--timeout SECONDS]
#       Connects (or sends one UDP datagram), prints the server's reply line and exits 0; on failure prints
#       "error: <reason>" and exits 1.
import select
import socket
import struct
import sys

SO_ORIGINAL_DST = 80
IP_TRANSPARENT = 19


def original_destination(conn, family):
    try:
        if family == socket.AF_INET:
            raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port = struct.unpack('!H', raw[2:4])[0]
            return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
        raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
        port = struct.unpack('!H', raw[2:4])[0]
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    except OSError:
        local = conn.getsockname()
        host = local[0]
        if host.startswith('::ffff:'):
            host = host[7:]
        return host, local[1]


def serve(tcp_ports, udp_ports, transparent):
    sockets = {}
    for port in tcp_ports:
        for family, addr in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if transparent:
                s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            try:
                s.bind((addr, port))
            except OSError:
                if family == socket.AF_INET6:
                    continue  # no IPv6 in this netns
                raise
            s.listen(64)
            sockets[s] = ('tcp', port, family)
    for port in udp_ports:
        for family, addr in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
            s = socket.socket(family, socket.SOCK_DGRAM)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind((addr, port))
            except OSError:
                if family == socket.AF_INET6:
                    continue
                raise
            sockets[s] = ('udp', port, family)
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    while True:
        readable, _, _ = select.select(list(sockets), [], [])
        for s in readable:
            kind, port, family = sockets[s]
            if kind == 'udp':
                _, peer = s.recvfrom(2048)
                s.sendto(('%d udp\n' % port).encode(), peer)
                continue
            try:
                conn, _ = s.accept()
            except OSError:
                continue
            try:
                host, orig_port = original_destination(conn, family)
                conn.sendall(('%d %s %d\n' % (port, host, orig_port)).encode())
            except OSError as error:
                sys.stderr.write('connection failed: %s\n' % error)
            finally:
                conn.close()


def client(host, port, udp, timeout, bind):
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    try:
        if udp:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.settimeout(timeout)
            s.sendto(b'q', (host, port))
            data, _ = s.recvfrom(2048)
        else:
            source = None if bind is None else (bind, 0)
            s = socket.create_connection((host, port), timeout=timeout, source_address=source)
            data = b''
            while True:
                chunk = s.recv(2048)
                if not chunk:
                    break
                data += chunk
        sys.stdout.write(data.decode())
        return 0
    except OSError as error:
        sys.stdout.write('error: %s\n' % error)
        return 1


def ports(text):
    return [int(p) for p in text.split(',') if p]


def main(argv):
    if len(argv) >= 2 and argv[0] == 'serve':
        udp = []
        if '--udp' in argv:
            udp = ports(argv[argv.index('--udp') + 1])
        serve(ports(argv[1]), udp, '--transparent' in argv)
        return 0
    if len(argv) >= 3 and argv[0] == 'client':
        timeout = 2.0
        if '--timeout' in argv:
            timeout = float(argv[argv.index('--timeout') + 1])
        bind = argv[argv.index('--bind') + 1] if '--bind' in argv else None
        return client(argv[1], int(argv[2]), '--udp' in argv, timeout, bind)
    sys.stderr.write(__doc__ or 'usage: serve PORTS [--udp PORTS] [--transparent] | client HOST PORT [--udp] [--bind SOURCE_IP]\n')
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
