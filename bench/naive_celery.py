"""The naive Celery pattern (`celery -A bench.naive_celery worker`): what most tutorials show.

The caller renders the email and puts everything (address, subject, both bodies) on the
queue; the task builds a Flask-Mail `Message` and calls `mail.send`, which opens a new SMTP
connection for every message. Celery's default settings (prefetch 4, early acks); no outbox,
so nothing survives Redis losing the message. Configured from REDIS_URL, MAIL_SERVER and
MAIL_PORT.
"""

from __future__ import annotations

import os

from celery import Celery
from flask import Flask
from flask_mail import Mail, Message

SENDER = "Flasky Admin <flasky@example.com>"

flask_app = Flask(__name__)
flask_app.config.update(
    MAIL_SERVER=os.environ.get("MAIL_SERVER", "localhost"),
    MAIL_PORT=int(os.environ.get("MAIL_PORT", "25")),
)
mail = Mail(flask_app)
celery = Celery("naive", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


@celery.task(name="naive.send_email")
def send_email(to: str, subject: str, text_body: str, html_body: str) -> None:
    with flask_app.app_context():
        msg = Message(subject, sender=SENDER, recipients=[to], body=text_body, html=html_body)
        mail.send(msg)
