"""The inbound sync: keeps the store's copy of the company mailbox current with a small fixed
number of upstream IMAP connections (one IDLE on INBOX, one worker by default).

:mod:`.upstream` is its side of the company mailbox (:class:`~.upstream.MailboxConnection`:
folders, folder state, new messages, flags, IDLE); :mod:`.folders` what each folder is for.
"""
