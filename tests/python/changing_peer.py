#!/usr/bin/env python3
"""A connected caller that changes itself on command, for the tests of what a
daemon connection may remember about its caller.

Usage: changing_peer.py SOCKET

Connects to SOCKET (a Unix stream socket), prints "connected", then reads one
command per line from stdin and prints "ok" once it has taken effect:
  groups G1,G2,...   setgroups() to these ids (empty for none)
  gid N              setresgid(N, N, N)
  exec PATH          execv(PATH) with the connection left open; PATH is then the
                     process, so the acknowledgement is up to it (cat echoes)
The connection stays open until stdin closes.
"""

import os
import socket
import sys


def read_line():
    """One line from stdin, read a byte at a time: a buffered read could swallow
    what is meant for the program this process execs."""
    line = bytearray()
    while True:
        byte = os.read(0, 1)
        if not byte:
            return None
        if byte == b"\n":
            return line.decode()
        line += byte


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(sys.argv[1])
    print("connected", flush=True)
    while (line := read_line()) is not None:
        command, _, argument = line.strip().partition(" ")
        if command == "groups":
            os.setgroups([int(gid) for gid in argument.split(",") if gid])
        elif command == "gid":
            gid = int(argument)
            os.setresgid(gid, gid, gid)
        elif command == "exec":
            # The connection must outlive the exec: that is the point.
            os.set_inheritable(connection.fileno(), True)
            os.execv(argument, [argument])
        else:
            print(f"unknown command {command!r}", file=sys.stderr)
            return 2
        print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
