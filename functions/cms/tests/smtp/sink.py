"""An SMTP server for the cms tests, and a parser for what it received.

    python sink.py serve DIR   listens on a free port of 127.0.0.1, prints
                               the port, and writes each message it accepts
                               to DIR as NNNN.eml (the raw message) beside
                               NNNN.json (the envelope); stops when its
                               standard input closes.
    python sink.py parse FILE  prints a received message as JSON: headers,
                               content type and each MIME part, decoded.

Recipients at refused.example are refused with a 550, so that a test can
see how a refusal is recorded. Uses aiosmtpd (requirements.txt), Python's
standard library for the rest.
"""

import asyncio
import email
import email.policy
import json
import os
import socket
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().endswith("@refused.example"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stem = os.path.join(self.directory, "%04d" % self.count)
        with open(stem + ".json", "w") as sidecar:
            json.dump({"mailFrom": envelope.mail_from, "rcptTos": envelope.rcpt_tos}, sidecar)
        # Written under another name and renamed: a reader never sees half
        # a message.
        with open(stem + ".part", "wb") as raw:
            raw.write(envelope.original_content)
        os.replace(stem + ".part", stem + ".eml")
        return "250 2.0.0 Ok: queued as %04d" % self.count


async def serve(directory):
    os.makedirs(directory, exist_ok=True)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    sink = Sink(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink.localhost"), sock=listener)
    print(listener.getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()
    await server.wait_closed()


def parse(path):
    with open(path, "rb") as raw:
        message = email.message_from_binary_file(raw, policy=email.policy.default)
    parts = []
    if message.is_multipart():
        for part in message.iter_parts():
            parts.append({"contentType": part.get_content_type(), "content": part.get_content()})
    else:
        parts.append({"contentType": message.get_content_type(), "content": message.get_content()})
    print(json.dumps({
        "headers": {name: str(value) for name, value in message.items()},
        "contentType": message.get_content_type(),
        "parts": parts,
    }))


if __name__ == "__main__":
    command, target = sys.argv[1], sys.argv[2]
    if command == "serve":
        asyncio.run(serve(target))
    elif command == "parse":
        parse(target)
    else:
        sys.exit("usage: sink.py serve DIR | sink.py parse FILE")
