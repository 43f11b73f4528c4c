"""Development only: the mail that the SMTP catcher kept, in the browser, as Mailpit shows it.

`python3 dev.py` runs devtools/smtp_catcher.py, which writes every message it receives as an
.eml file in the folder DEV_SMTP_MAILDIR (default `<instance>/mail`). `/dev/inbox/` lists
those files, newest first, and shows each one: headers, text body, HTML body in a sandboxed
frame, attachments to download. `folder` finds the files, `parsing` reads one, `views` serves
them, in the development configuration only.
"""
