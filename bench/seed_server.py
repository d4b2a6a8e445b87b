#!/usr/bin/env python3
"""The tutorial's echo server, completed into a runnable program.

The tutorial (a generator scheduler with `select`) shows `tcp_server` and
`echo_handler`; this adds the parts it leaves out: the `tasks` queue and the
`run()` loop that parks a task on `yield 'recv', sock` / `yield 'send', sock`
until `select` says the socket is ready. Two deviations, both needed to
benchmark it fairly: the listen backlog is 1024 instead of 5, so that a
thousand clients can connect at once, and a partial `send` is finished
instead of silently dropping the rest.

    python3 bench/seed_server.py [--listen HOST:PORT] [--prefix STR]
"""

import argparse
from collections import deque
from select import select
from socket import socket, AF_INET, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR

tasks = deque()
recv_wait = {}  # socket -> task waiting until it is readable
send_wait = {}  # socket -> task waiting until it is writable


def run():
    while any([tasks, recv_wait, send_wait]):
        while not tasks:
            can_recv, can_send, _ = select(recv_wait, send_wait, [])
            for sock in can_recv:
                tasks.append(recv_wait.pop(sock))
            for sock in can_send:
                tasks.append(send_wait.pop(sock))
        task = tasks.popleft()
        try:
            why, what = next(task)
            if why == 'recv':
                recv_wait[what] = task
            elif why == 'send':
                send_wait[what] = task
            else:
                raise RuntimeError('unknown reason: %r' % (why,))
        except StopIteration:
            pass


def tcp_server(address, handler, prefix):
    sock = socket(AF_INET, SOCK_STREAM)
    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(1024)
    print('listening on %s:%d' % sock.getsockname(), flush=True)
    while True:
        yield 'recv', sock
        client, addr = sock.accept()
        tasks.append(handler(client, addr, prefix))


def echo_handler(client, address, prefix):
    while True:
        yield 'recv', client
        try:
            data = client.recv(1000)
        except ConnectionError:
            break
        if not data:
            break
        reply = prefix + data
        while reply:
            yield 'send', client
            try:
                sent = client.send(reply)
            except ConnectionError:
                client.close()
                return
            reply = reply[sent:]
    client.close()


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--listen', default='0.0.0.0:25000')
    parser.add_argument('--prefix', default='GOT:')
    args = parser.parse_args()
    host, port = args.listen.rsplit(':', 1)
    tasks.append(tcp_server((host, int(port)), echo_handler, args.prefix.encode()))
    run()
