"""Build the Flask-Mail `Message` for an outbox row (inside the app context)."""

from __future__ import annotations

from calendar import timegm

from flask_mail import Message

from worker.claims import ClaimedEmail


def build_message(email: ClaimedEmail) -> Message:
    """Both bodies, the row's stable Message-ID, and the row's creation time as Date.

    The same row always gives the same headers, so a duplicate after a crash carries the same
    Message-ID and receivers can drop it.
    """
    message = Message(
        subject=email.subject,
        recipients=list(email.recipients),
        sender=email.sender,
        body=email.text_body,
        html=email.html_body,
        date=timegm(email.created_at.timetuple()),
    )
    message.msgId = email.message_id
    if message.has_bad_headers():
        raise ValueError("the subject, sender or a recipient contains a line break")
    return message
