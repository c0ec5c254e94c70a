"""SMTP submission: salespeople's mail programs send here with their own logins.

:mod:`.smtp` is the server (asyncio streams), :mod:`.smtpwire` its protocol (sans-I/O, with
:mod:`.smtpevents`, :mod:`.smtpaddress`, :mod:`.sasl` and :mod:`.data`, the DATA reader),
:mod:`.submit` the work behind the answer to DATA (recipients, rules, signature, header rewrite,
spool commit), :mod:`.enforce` what a rules decision means, :mod:`.rewrite` the header rewrite.
"""
