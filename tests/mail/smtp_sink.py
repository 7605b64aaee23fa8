"""An SMTP server for Grantry's mail tests: aiosmtpd on 127.0.0.1:PORT (argv[1]).

Prints one JSON line when it listens ({"ready": PORT}) and one per message received:
envelope sender and recipients, the decoded Subject, To and Message-ID headers, and the
plain-text and HTML parts. Runs until its standard input closes (or it is killed).
Installed by scripts/test from PyPI (aiosmtpd) into a cached virtual environment.
"""

import email
import email.policy
import json
import sys

from aiosmtpd.controller import Controller


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        parts = {"text/plain": None, "text/html": None}
        for part in msg.walk():
            kind = part.get_content_type()
            if kind in parts and parts[kind] is None:
                parts[kind] = part.get_content()
        print(
            json.dumps(
                {
                    "mailFrom": envelope.mail_from,
                    "rcptTos": envelope.rcpt_tos,
                    "from": str(msg["From"]),
                    "to": str(msg["To"]),
                    "subject": str(msg["Subject"]),
                    "messageId": str(msg["Message-ID"]),
                    "text": parts["text/plain"],
                    "html": parts["text/html"],
                }
            ),
            flush=True,
        )
        return "250 Message accepted for delivery"


def main():
    port = int(sys.argv[1])
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"ready": port}), flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
