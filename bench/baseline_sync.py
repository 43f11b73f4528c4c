"""Baseline: the book's example 6-4, `mail.send()` in the request (`bench.baseline_sync:app`)."""

from __future__ import annotations

from flask import Flask
from flask_mail import Message

from bench.book_app import create_book_app, mail


def send_now(app: Flask, msg: Message) -> None:
    mail.send(msg)


app = create_book_app(send_now)
