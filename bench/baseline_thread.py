"""Baseline: the book's example 6-5, `mail.send()` in a new thread (`bench.baseline_thread:app`)."""

from __future__ import annotations

from threading import Thread

from flask import Flask
from flask_mail import Message

from bench.book_app import create_book_app, mail


def send_async_email(app: Flask, msg: Message) -> None:
    with app.app_context():
        mail.send(msg)


def start_thread(app: Flask, msg: Message) -> Thread:
    thr = Thread(target=send_async_email, args=[app, msg])
    thr.start()
    return thr


app = create_book_app(start_thread)
